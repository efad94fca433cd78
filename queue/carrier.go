package queue

import "github.com/nats-io/nats.go"

// HeaderCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier.
// NATS headers are case-sensitive: Get finds "traceparent" under any case.
type HeaderCarrier nats.Header

func (c HeaderCarrier) Get(key string) string { panic("TODO") }
func (c HeaderCarrier) Set(key, value string) { panic("TODO") }
func (c HeaderCarrier) Keys() []string        { panic("TODO") }
