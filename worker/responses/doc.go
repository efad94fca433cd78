// Package responses copies survey responses from the CustomerGauge sync API
// (GET /v7/rest/sync/responses) to the cg.responses subject, each response
// exactly once (README, "Responses sync").
//
// # A pass
//
// Once takes the lease, reads the stored state and the last message on the
// subject, then fetches pages from the stored cursor until a page's data is
// empty or its cursor.next is missing (the stored cursor is then kept, and
// the page is fetched again next time). Each response is published with its
// raw bytes as the body and headers Nats-Msg-Id cg-response-<n> (after k
// resets cg-response-<n>-r<k>), CG-Response-Number <n>, CG-Sync-Generation
// <k>, and the trace context. A page's cursor is stored only after every
// publish of the page was acknowledged. A response without a
// number_customergauge fails its whole page before anything of it is
// published; the error is recorded in the state and the next poll tries
// again. Run calls Once at start and every Interval.
//
// # Exactly once
//
// The stream's duplicate window is not relied on: the next poll after a
// crash may come an hour later. Three mechanisms do the work instead.
//
//   - Lease. The key "lease" of the CG_SYNC bucket names the one replica
//     allowed to poll and when its claim lapses. It is taken with Create
//     (absent) or Update on the observed revision (lapsed), renewed every
//     third of its TTL with Update on the holder's last revision, and
//     released by writing a lapsed lease. A holder that cannot renew stops
//     its pass before another replica could take over, without storing a
//     cursor. Other replicas' Once returns ErrLeaseHeld.
//   - Expected last sequence. Every publish carries the sequence of the
//     last message on the subject as this pass knows it, so if two writers
//     ever overlap (a paused holder waking after its lease lapsed) the
//     server refuses the second one's publish and that pass stops with
//     ErrConcurrentWriter instead of interleaving.
//   - Skip rule. The API orders responses by its internal key, oldest
//     first, and number_customergauge is assumed to grow along the cursor.
//     A pass starts from the highest number already published, the larger
//     of the state's last_number and the CG-Response-Number of the last
//     message on the subject, and skips every response not above it. So a
//     crash between a publish and its cursor store costs only a re-fetch:
//     the page's already published responses are skipped. A response out of
//     order would be skipped too; it is logged as a warning.
//
// The state key holds JSON {cursor, last_success, last_error,
// last_error_at, resets, last_number}, always written with compare-and-set,
// so a pass also stops when an operator resets the sync under it.
//
// # Resets
//
// Reset clears the cursor and last_number and increments resets, the
// generation. Message ids then end in -r<k>, so the duplicate window does
// not swallow the resync, and the skip rule ignores a last message whose
// CG-Sync-Generation is older than the current one (it still holds the old
// high number). A last message of a newer generation than the state's means
// the state was lost (a recreated bucket) or an old copy of it restored:
// the pass carries on that generation from the beginning, its last message's
// number skipping what was published, instead of publishing everything
// again. An undecodable state fails every pass until a Reset replaces it.
// Nothing else should publish to the responses subject: a last message
// without CG-Response-Number gives the skip rule nothing to go on beyond
// the state's last_number.
//
// # Errors
//
// Page fetches go through the sync endpoint's flow controller (cgapi/flow)
// and API errors are retried with its schedule, a 429's Retry-After as the
// floor, for up to MaxElapsed per page (time waiting at an open breaker
// excepted); a pass that still fails keeps
// the cursor of the last page it completed, records the error, and the next
// poll resumes there. Publishes whose outcome is unknown (a lost ack, a
// restarting server) are resolved by reading the subject's tail before
// trying again. Cancelling the context stops a pass promptly and releases
// the lease.
//
// Publishes are sequential, each waiting for its acknowledgement, because
// each names its predecessor's sequence; pipelining them would need
// predicted sequences, which another subject sharing the stream could make
// skip a response.
package responses
