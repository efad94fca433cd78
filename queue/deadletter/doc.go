// Package deadletter builds dead letters and provides the operator tooling
// behind `cgworker dlq` (README, "Outcomes").
//
// A dead letter is the rejected message's body byte for byte with its
// headers, minus the server's Nats-* control headers, plus CG-* headers
// saying why it was rejected and where it came from. It is published to
// <prefix>.dlq.<kind> under the message id
// cg-dlq-<stream>-<seq>-<stream timestamp ns>, so a message redelivered
// after its dead letter was stored (but before it was acknowledged) is
// dead-lettered once.
//
// List, Show, Replay and Purge read the dead-letter stream through a
// short-lived ephemeral consumer, in stream order. They only see dead
// letters stored before they started, so a replayed message that fails
// again and comes back is not replayed a second time in the same run.
package deadletter
