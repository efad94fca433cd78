package schemas

import (
	"fmt"
	"time"
)

// Kind is an event kind: one schema each.
type Kind string

const (
	Activity Kind = "activity"
	Account  Kind = "account"
	Contact  Kind = "contact"
)

// Kinds lists every kind, in a stable order.
var Kinds = []Kind{Activity, Account, Contact}

// ParseKind checks a kind name given by a user.
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case Activity, Account, Contact:
		return Kind(s), nil
	}
	return "", fmt.Errorf("unknown kind %q: want activity, account or contact", s)
}

// MaxBodyBytes is the largest body the API takes (2 MiB).
const MaxBodyBytes = 2 << 20

// ErrorKind says why a document is invalid, as in CG-Error-Kind.
type ErrorKind string

const (
	Malformed ErrorKind = "malformed" // not JSON at all
	Schema    ErrorKind = "schema"    // JSON that breaks the schema (including a non-object)
)

// Error is an invalid document: Fields is the API's 422 "errors" shape,
// field name (dotted path for nested fields) -> messages in the API's
// wording ("The type field is required.").
type Error struct {
	Kind    ErrorKind
	Summary string // one line
	Fields  map[string][]string
}

func (e *Error) Error() string { return e.Summary }

// Validator holds the compiled schemas of every kind. Safe for concurrent use.
type Validator struct{}

// New compiles the built-in schemas, replacing any of activity.json,
// account.json and contact.json found in dir (CG_SCHEMAS_DIR; "" for none).
// A broken file is an error naming the file.
func New(dir string) (*Validator, error) { panic("TODO") }

// Validate checks body against kind's schema. It returns nil or *Error.
func (v *Validator) Validate(kind Kind, body []byte) error { panic("TODO") }

// NormalizeHappenedAt parses any accepted happened_at form and returns
// "YYYY-MM-DD HH:MM:SS" in UTC, fractional seconds truncated.
func NormalizeHappenedAt(s string) (string, error) { panic("TODO") }

// FormatHappenedAt formats t as the API's "YYYY-MM-DD HH:MM:SS" in UTC.
func FormatHappenedAt(t time.Time) string { return t.UTC().Format(time.DateTime) }

// ActivityFields are the identity fields of a valid activity body as the
// producer sent them; empty when absent or "" (an empty optional string
// means absent).
type ActivityFields struct {
	Reference  string
	HappenedAt string // normalised, "YYYY-MM-DD HH:MM:SS" UTC
}

// ValidateActivity validates an activity and returns its identity fields.
// It returns *Error for an invalid body.
func (v *Validator) ValidateActivity(body []byte) (ActivityFields, error) { panic("TODO") }

// RewriteActivity returns body with "reference" and "happened_at" set to the
// given values (happenedAt already normalised) and empty optional strings
// removed; every other member is kept byte for byte, in its order. body must
// have passed ValidateActivity.
func RewriteActivity(body []byte, reference, happenedAt string) ([]byte, error) { panic("TODO") }
