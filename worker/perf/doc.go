// Package perf holds cgworker's performance record: BenchmarkBinary runs
// the real binary as separate processes (`cgworker run`, one and three
// replicas, against `cgworker emulator` in its own process and an embedded
// NATS server in the test process) and compares it with a minimal
// hand-written consumer, testdata/baseline: the plain consumer most people
// would write (Consume with a client buffer, a pool of handlers), doing the
// same work without validation, retries, tracing or metrics.
//
// Consumers are compared in alternating runs, and each comparison reports
// medians: events/s draining a pre-published backlog; CPU per event of the
// workers, the emulator and the NATS server; p50 and p99 time from publish
// to acknowledgement at a fixed publish rate; the peak RSS and heap of a
// worker process. See BenchmarkBinary for how each is measured. The
// package has no non-test code; plain `go test` runs only a short smoke
// test of the baseline. Record the figures with
//
//	go test -run '^$' -bench Binary ./worker/perf/ -pairs 5
package perf
