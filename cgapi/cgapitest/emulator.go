// Package cgapitest is a faithful emulator of the CustomerGauge API for
// tests and for `cgworker emulator` / `cgworker dev`.
package cgapitest

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// Options configure the emulator. Zero values give the defaults.
type Options struct {
	ClientID       string        // default "dev"
	ClientSecret   string        // default "dev"
	Configurations []string      // known configuration references; default account, contact
	Contacts       []string      // known contacts (emails/phones); default DefaultContacts
	Latency        time.Duration // added to every API call (not the token call)
	ErrorRate      float64       // share of API calls answered 5xx
	RateLimitRate  float64       // share of API calls answered 429
	RetryAfter     time.Duration // Retry-After of those 429s (whole seconds)
	TokenTTL       time.Duration // token lifetime; default 1h
	Responses      int           // seeded survey responses
}

// DefaultContacts are the contacts the emulator knows unless told otherwise.
var DefaultContacts = []string{"john.doe@example.com", "jane.roe@example.com", "+31 20 123 4567"}

// Activity is an activity as stored by the emulator.
type Activity struct {
	ID        int64
	Reference string
	Body      json.RawMessage // the last body received for this reference
	Puts      int             // how many PUTs created or updated it
}

// Request is one request the emulator received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Status int
}

// Emulator is the http.Handler serving the API's paths. Safe for
// concurrent use.
type Emulator struct{}

// New returns an emulator.
func New(opts Options) *Emulator { panic("TODO") }

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("TODO") }

// Server is an emulator listening on loopback.
type Server struct {
	*Emulator
	URL string // http://127.0.0.1:PORT, the base of every URL
}

// NewServer starts an emulator on loopback; it is closed when the test ends.
func NewServer(tb testing.TB, opts Options) *Server { panic("TODO") }
