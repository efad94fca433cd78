// Package chaos holds the end-to-end chaos suite of cgworker: the real
// binary runs as separate processes against a real NATS server (single node
// or a three-node cluster) and the API emulator, while the tests kill
// replicas, restart NATS, break the API and flood the worker with poison.
// Each test then proves the promise with exact counts: every valid event
// stored by the emulator exactly once, every invalid one dead-lettered
// exactly once with the right error kind, every synced response published
// exactly once, and no message left pending or unacknowledged.
//
// The package has no non-test code. TestMain builds the binary once (without
// the race detector, which applies to the test process only); run the suite
// with
//
//	go test -race -count=1 ./worker/chaos/
//
// and skip it with -short. CGWORKER_CHAOS_BINARY names a prebuilt binary to
// test instead of building one (a release candidate, say).
package chaos
