// Package cgapi is the client of the CustomerGauge API: PUT /activities/
// and PUT /records/ on the imports host, and GET /v7/rest/sync/responses on
// the API host, authenticated with OAuth2 client credentials.
//
// Every answer maps onto one error type of the outcome table in
// README, "Outcomes", and ClassOf names its row, so callers branch on
// one value (errors.As still reaches the fields):
//
//   - 2xx: success (nil error), whatever the body
//   - 422, 400, 413: *DataError with the API's field errors; do not retry
//   - 429: *RateLimitError with Retry-After
//   - 401, 403: the token is renewed and the call repeated once; a second
//     rejection, or a failing token endpoint, is an *AuthError (an outage)
//   - 404, 405, other 4xx: *ConfigError (an outage: wrong URL)
//   - 5xx, timeouts, connection errors: *TransientError
//
// Every call has its own timeout (Config.Timeout), token wait included; a
// call that runs out of it is a *TransientError matching
// context.DeadlineExceeded. A call cancelled by its caller returns an error
// matching context.Canceled, which Retryable reports as not worth retrying.
//
// Tokens are cached and renewed before they expire, early by the smaller
// of 10 s and a tenth of their lifetime; a token past that point is still
// used while its successor is fetched. One fetch runs at a time, under a
// background context, so a cancelled call never breaks the next renewal.
//
// Request bodies are sent byte for byte as given, and sync responses are
// returned as the API sent them, so numbers never pass through float64.
package cgapi
