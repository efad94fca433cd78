// Package perf holds cgworker's performance record: BenchmarkBinary runs
// the real binary as separate processes (`cgworker run`, one and three
// replicas, against `cgworker emulator` in its own process and an embedded
// NATS server in the test process) and compares it with a minimal
// hand-written consumer, testdata/baseline, doing the same work without
// validation, retries, tracing or metrics.
//
// It reports, per configuration: events/s draining a pre-published backlog;
// p50 and p99 time from publish to acknowledgement at a fixed publish rate;
// the peak RSS and heap of a worker process; and the CPU time per 1,000
// events of the workers, the emulator and the NATS server. See
// BenchmarkBinary for how each is measured. The package has no non-test code; plain `go test` runs
// only a short smoke test of the baseline. Record the figures with
//
//	go test -run '^$' -bench Binary -count 3 ./worker/perf/
package perf
