// Package responses copies survey responses from the CustomerGauge sync API
// (GET /v7/rest/sync/responses) to the cg.responses subject, each response
// exactly once (README, "Responses sync").
//
// Once runs one pass: it takes the lease (lease.go), reads the state
// (state.go) and the subject's last message, then pages from the stored
// cursor, publishing each response not above the highest number already
// published, each publish expecting the subject's last sequence
// (publish.go), and storing each page's cursor by compare-and-set after
// all its publishes were acknowledged. Run calls Once at start and every
// Interval. Why each of these is needed, and how resets and a lost state
// are handled: DESIGN.md, "The responses sync: exactly once".
//
// Page fetches go through the sync endpoint's flow controller (cgapi/flow)
// and are retried with its schedule; waiting at an open breaker does not
// spend MaxElapsed.
package responses
