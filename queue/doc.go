// Package queue is cgworker's side of NATS: the connection (Connect, with
// infinite reconnects and logged state changes), the streams, consumers,
// key-value bucket and object store named in the README, "Subjects,
// streams, consumers" (EnsureStreams, EnsureConsumer, EnsureSyncBucket,
// EnsureDLQBodies: created when missing, never modified; the consumers of
// unknown subjects, EnsureUnknownConsumers, are cgworker's own, one per
// subject up to a cap and one shared past it, deleted when their subjects
// hold no message),
// the names derived from the subject prefix (Names), acknowledged
// publishing (Publish, PublishStream) and trace context in message headers
// (HeaderCarrier).
//
// Subpackages: deadletter builds dead letters and implements `cgworker
// dlq`; embedded runs a nats-server in the process for `cgworker dev`;
// natstest starts one for a test.
package queue
