// Package flow treats the CustomerGauge API as one resource that every
// message of a replica shares, instead of letting each message retry on
// its own (README, "When the API is in trouble"; DESIGN.md, "Flow
// control").
//
// A Set holds one Controller per endpoint family: PUT /activities/, PUT
// /records/, the sync GET and the token endpoint. Every API call goes
// through its endpoint's Controller.Do, which
//
//   - waits while the endpoint's circuit breaker is open, letting one real
//     call through at a time as a probe, at jittered intervals of at most
//     2 s; the first probe that succeeds closes the breaker and every
//     waiting call goes at once;
//   - keeps the calls in flight under an adaptive limit between 1 and the
//     replica's concurrency (AIMD: halved at most once per round trip when
//     the API is overloaded, raised by one per round trip of successes);
//   - pauses the whole endpoint for a 429's Retry-After only when the
//     rate-limit window is spent (X-RateLimit-Remaining: 0) or 429s are a
//     large share of recent answers; a lone 429 delays only its caller;
//   - never starts more calls than the window's X-RateLimit-Remaining
//     leaves, so the window is not used up early, and never more calls a
//     second than CG_RATE_LIMIT.
//
// The breaker is sony/gobreaker; CG_RATE_LIMIT is golang.org/x/time/rate.
// The waiting, the probe schedule, the adaptive limit and the pacing are
// this package's.
package flow
