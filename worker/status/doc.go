// Package status reads the whole system's state from NATS alone, for
// operators without Grafana (`cgworker status`, README, "Operating it"):
// the consumers' backlog, the dead letters and the responses sync, and the
// items that need attention. It only reads: a stream, consumer or bucket
// that is missing is reported, never created, and streams an operator made
// (NACK, other names or subjects) are read as they are.
//
// It also holds the readiness probe of `cgworker healthcheck`, which lets
// shell-less runtimes (the distroless image under compose) health-check a
// replica through its own /readyz.
package status
