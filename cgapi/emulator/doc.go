// Package emulator is a faithful emulator of the CustomerGauge API, run by
// `cgworker emulator` and `cgworker dev`, and by tests through the thin
// cgapitest helpers (cgapitest.NewServer starts one on loopback in one line).
// It never imports testing, so it ships in the binary as a product.
//
// One port serves every path of the real service (README, "The emulator"):
//
//	POST /oauth2/token              client-credentials tokens that expire
//	PUT  /activities/               validated, stored by reference (upsert)
//	PUT  /records/                  validated per configuration, stored
//	GET  /v7/rest/sync/responses    seeded survey responses, cursor paging
//
// Validation failures are answered as the real API answers them: a
// Laravel-style 422 {"message":"The given data was invalid.","errors":{...}},
// and a missing, unknown or expired bearer token is a 401
// {"message":"Unauthenticated."}. Passing against the emulator is meant to
// mean passing against the real service.
//
// Faults are knobs that tests turn at run time, safely from any goroutine:
// latency, outages, probabilistic 5xx and 429 answers, a failing or hanging
// token endpoint, expired tokens, and scripted statuses for the next n calls
// of a path (FailNext), which take precedence over the probabilistic ones.
//
// Tests inspect what arrived through Activities, Records, Requests (a
// bounded log of the last requests, with headers, Authorization redacted),
// Calls and TokensIssued.
package emulator
