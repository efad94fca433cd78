package queue

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// HeaderCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier.
// NATS headers are case-sensitive: Get finds "traceparent" under any case.
// Set needs a non-nil header map (give a *nats.Msg one before injecting).
type HeaderCarrier nats.Header

// Get returns the first value of key, matched exactly first and then
// without regard to case, so "traceparent", "Traceparent" and
// "TRACEPARENT" from different producers all work.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set stores value under key exactly as given (propagators use lower
// case), removing any other spelling of the same key so that a stale
// "Traceparent" cannot shadow the new "traceparent".
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if k != key && strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the header names as they are stored.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
