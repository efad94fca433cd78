// Package deadletter builds and stores dead letters and provides the
// operator tooling behind `cgworker dlq` (README, "Dead letters"; design in
// DESIGN.md, "Dead letters").
//
// A dead letter is the rejected message's body byte for byte with its
// headers, minus the server's Nats-* control headers, plus CG-* headers
// saying why it was rejected and where it came from. Store publishes it on
// a subject of its own, <prefix>.dlq.<kind>.<stream>-<seq>-<stream
// timestamp ns>, demanding that the subject be empty: a message that comes
// back after its letter was stored, however much later and whatever its
// delivery count, finds the letter there and is dead-lettered once. A
// letter too large for the server keeps its body and producer headers in
// the <PREFIX>_DLQ_BODIES object store (object first, then the letter;
// deletes in reverse), and Show and Replay follow its CG-Body-Ref.
//
// List, Show, Replay and Purge read the dead-letter stream through a
// short-lived ephemeral consumer, in stream order, letters of earlier
// versions (<prefix>.dlq.<kind>) included. They only see dead letters
// stored before they started, so a replayed message that fails again and
// comes back is not replayed a second time in the same run.
package deadletter
