package cgapi

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Quota is what an answer said of the endpoint's rate-limit window, as
// Laravel's throttle sends it on every answer: X-RateLimit-Limit and
// X-RateLimit-Remaining, and on a 429 X-RateLimit-Reset, when the window
// turns. Known is false when the answer had neither, as when the API sets
// no limit.
type Quota struct {
	Known     bool
	Limit     int
	Remaining int
	Reset     time.Time // zero when not sent
}

// Spent reports a window with no call left in it.
func (q Quota) Spent() bool { return q.Known && q.Remaining <= 0 }

// The rate-limit headers in their canonical form: Header.Get builds the
// canonical form of any other spelling, an allocation per answer.
const (
	headerLimit     = "X-Ratelimit-Limit"
	headerRemaining = "X-Ratelimit-Remaining"
	headerReset     = "X-Ratelimit-Reset"
)

func quotaOf(h http.Header) Quota {
	remaining := h.Get(headerRemaining)
	if remaining == "" {
		return Quota{} // the usual answer of an API without a limit: no error built
	}
	rem, err := strconv.Atoi(remaining)
	if err != nil {
		return Quota{}
	}
	limit, _ := strconv.Atoi(h.Get(headerLimit))
	q := Quota{Known: true, Limit: limit, Remaining: max(rem, 0)}
	if reset, err := strconv.ParseInt(h.Get(headerReset), 10, 64); err == nil && reset > 0 {
		q.Reset = time.Unix(reset, 0)
	}
	return q
}

type quotaKey struct{}

// WithQuota returns a context whose calls record their answer's Quota in
// q, success or not, so the flow controller can pace an endpoint by what
// the API says is left without every method returning it.
func WithQuota(ctx context.Context, q *Quota) context.Context {
	return context.WithValue(ctx, quotaKey{}, q)
}

// reportQuota records q in the Quota that ctx carries (WithQuota), if any.
func reportQuota(ctx context.Context, q Quota) {
	if p, ok := ctx.Value(quotaKey{}).(*Quota); ok && p != nil {
		*p = q
	}
}
