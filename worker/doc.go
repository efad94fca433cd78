// Package worker is the event pipeline of cgworker: it consumes activity,
// account and contact events from JetStream, validates them, PUTs them to
// CustomerGauge with retries, and acknowledges or dead-letters each one.
//
// The pipeline is built from small parts, each in its own file:
//
//   - consume.go pulls messages from the durable consumers into free
//     slots only (bounded parallelism, nothing buffered), fetches nothing
//     for a kind whose API endpoint cannot take calls, and owns shutdown;
//   - prepare.go turns a message into the API request (validation,
//     reference and happened_at derivation) or a schema failure;
//   - deliver.go makes the API call through its endpoint's flow
//     controller (cgapi/flow: breaker, adaptive concurrency, rate limits),
//     retries with the one retry schedule, honouring Retry-After, keeps the
//     contact wait, and decides the Outcome of the message;
//   - outcome.go is the one place that acts on an Outcome: acknowledge,
//     dead-letter then acknowledge, or hand the message back to JetStream
//     with a delay. Read it next to README, "Outcomes", and DESIGN.md,
//     "The outcome table";
//   - inprogress.go keeps held messages from being redelivered while they
//     are retried or wait at a breaker, by sending InProgress every third
//     of the ack wait; a held message waiting for its endpoint gives its
//     handler to the others (held.Wait);
//   - metrics.go holds the pipeline's instruments; health lives in
//     worker/health, where the sync and the flow controllers report too.
//
// Events are processed in parallel, so their order is not preserved.
package worker
