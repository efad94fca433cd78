package cgapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The error types below map one to one onto the rows of the contract's
// outcome table (CONTRACT.md section 5). Callers branch on them with
// errors.As; Retryable says whether a call is worth repeating.

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
// or HTTP date, converted to a duration from now), zero when absent.
type RateLimitError struct {
	RetryAfter time.Duration
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

// Retryable reports whether repeating the call may succeed: everything but a
// DataError and a cancelled context. Outages (AuthError, ConfigError) are
// retryable: they are cured by fixing the deployment, not the data.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var de *DataError
	return !errors.As(err, &de)
}

// IsOutage reports whether err means the API cannot be used right now
// (misconfiguration or failing authentication), as opposed to one slow or
// failed call. /readyz fails while calls end in outages.
func IsOutage(err error) bool {
	var ae *AuthError
	var ce *ConfigError
	return errors.As(err, &ae) || errors.As(err, &ce)
}
