package cgapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The error types below map one to one onto the rows of the outcome table
// (README, "Outcomes"). Callers branch on ClassOf, or on
// the types with errors.As when they need their fields; Retryable says
// whether a call is worth repeating.

// DataError is the API rejecting the data itself: 422 (validation), 400 or
// 413. Retrying the same body will not help.
type DataError struct {
	Status  int                 // HTTP status code
	Message string              // the API's "message", informational only
	Errors  map[string][]string // the API's "errors": field -> messages
}

func (e *DataError) Error() string {
	if len(e.Errors) == 0 {
		if e.Message != "" {
			return fmt.Sprintf("cgapi: rejected (HTTP %d): %s", e.Status, e.Message)
		}
		return fmt.Sprintf("cgapi: rejected (HTTP %d)", e.Status)
	}
	keys := make([]string, 0, len(e.Errors))
	for k := range e.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "cgapi: rejected (HTTP %d):", e.Status)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %s", k, strings.Join(e.Errors[k], " "))
	}
	return b.String()
}

// OnlyField reports whether every error of e is on the one field name.
func (e *DataError) OnlyField(name string) bool {
	if len(e.Errors) != 1 {
		return false
	}
	_, ok := e.Errors[name]
	return ok
}

// RateLimitError is a 429. RetryAfter is the server's Retry-After (seconds
// or HTTP date, converted to a duration from now), zero when absent. Quota
// is what the answer said of the rate-limit window: with Remaining 0 the
// window is spent, and the whole endpoint waits it out, not only this call.
type RateLimitError struct {
	RetryAfter time.Duration
	Quota      Quota
}

func (e *RateLimitError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("cgapi: rate limited (HTTP 429), retry after %s", e.RetryAfter)
	}
	return "cgapi: rate limited (HTTP 429)"
}

// AuthError is an authentication failure that a fresh token did not cure:
// a 401/403 after one refresh, or the token endpoint refusing or failing.
// It is an outage (credentials or the auth service), never a data error.
type AuthError struct {
	Status int   // HTTP status of the failing call, 0 when none was received
	Err    error // underlying cause, never containing the secret
}

func (e *AuthError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("cgapi: authentication failed (HTTP %d): %v", e.Status, e.Err)
	}
	return fmt.Sprintf("cgapi: authentication failed: %v", e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// ConfigError is a 404, 405 or any other 4xx not listed above: the worker is
// pointed at the wrong place, so it is an outage, never a data error.
type ConfigError struct {
	Status int
	Method string
	URL    string // without query string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("cgapi: %s %s answered HTTP %d: check CG_REGION / CG_IMPORTS_URL / CG_API_URL", e.Method, e.URL, e.Status)
}

// TransientError is a 5xx, a timeout or a connection error.
type TransientError struct {
	Status int // 0 when no response was received
	Err    error
}

func (e *TransientError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("cgapi: server error (HTTP %d): %v", e.Status, e.Err)
	}
	return fmt.Sprintf("cgapi: %v", e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// Class is the row of the outcome table (README, "Outcomes") an error belongs to
// (README, "Outcomes"), so callers branch on one value instead of a
// chain of errors.As.
type Class int

const (
	ClassNone      Class = iota // no error
	ClassData                   // *DataError: the API rejected the data; do not retry
	ClassRateLimit              // *RateLimitError: wait for RetryAfterOf, then retry
	ClassAuth                   // *AuthError: an outage (credentials, auth service)
	ClassConfig                 // *ConfigError: an outage (wrong URL)
	ClassTransient              // *TransientError, or any other failure: retry with backoff
	ClassCanceled               // the caller cancelled the call: do not retry
)

var classNames = [...]string{"none", "data", "rate-limit", "auth", "config", "transient", "canceled"}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// ClassOf classifies err. A cancellation wins over everything else; errors
// that are none of this package's types are transient, since nothing says
// the data or the deployment is at fault.
func ClassOf(err error) Class {
	if err == nil {
		return ClassNone
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	// errors.AsType, not errors.As: the classification runs on every
	// call's answer, and As moves each of its targets to the heap.
	if _, ok := errors.AsType[*DataError](err); ok {
		return ClassData
	}
	if _, ok := errors.AsType[*RateLimitError](err); ok {
		return ClassRateLimit
	}
	if _, ok := errors.AsType[*AuthError](err); ok {
		return ClassAuth
	}
	if _, ok := errors.AsType[*ConfigError](err); ok {
		return ClassConfig
	}
	return ClassTransient
}

// RetryAfterOf is a rate limit's Retry-After, zero for any other error.
func RetryAfterOf(err error) time.Duration {
	if rl, ok := errors.AsType[*RateLimitError](err); ok {
		return rl.RetryAfter
	}
	return 0
}

// StatusOf is the HTTP status the API answered with, zero when none was
// received (a timeout, a connection error, a cancellation).
func StatusOf(err error) int {
	if err == nil {
		return 0
	}
	if de, ok := errors.AsType[*DataError](err); ok {
		return de.Status
	}
	if _, ok := errors.AsType[*RateLimitError](err); ok {
		return http.StatusTooManyRequests
	}
	if ae, ok := errors.AsType[*AuthError](err); ok {
		return ae.Status
	}
	if ce, ok := errors.AsType[*ConfigError](err); ok {
		return ce.Status
	}
	if te, ok := errors.AsType[*TransientError](err); ok {
		return te.Status
	}
	return 0
}

// Retryable reports whether repeating the call may succeed: everything but a
// DataError and a cancelled context. Outages (AuthError, ConfigError) are
// retryable: they are cured by fixing the deployment, not the data.
func Retryable(err error) bool {
	switch ClassOf(err) {
	case ClassNone, ClassData, ClassCanceled:
		return false
	}
	return true
}

// IsOutage reports whether err means the endpoint is unavailable: a 5xx,
// a timeout or connection error, a failing token endpoint, or a
// misconfiguration status (401/403 after a refresh, 404, 405). This is the
// one definition of "unavailable" (README, "When the API is in trouble"):
// it opens the flow controller's breaker, which /readyz reports. A 429, a
// data error and a cancellation are not: the API answered, or nobody
// waited for it to.
func IsOutage(err error) bool { return ClassOf(err).Outage() }

// Outage reports whether an error of class c means the endpoint is
// unavailable (IsOutage), for a caller that has classified it already.
func (c Class) Outage() bool {
	switch c {
	case ClassAuth, ClassConfig, ClassTransient:
		return true
	}
	return false
}
