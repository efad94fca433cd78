package queue

// Header names a producer may set on an event (README, "Events"). They
// live here, beside the stream plumbing, because they are part of what an
// event on the stream is; the dead-letter package reuses the first two,
// which a dead letter carries so that a replay keeps the activity's
// identity and time.
const (
	// HeaderReference stands for an activity's "reference" when the body
	// has none (replay sets it).
	HeaderReference = "CG-Reference"
	// HeaderHappenedAt stands for an activity's "happened_at" when the
	// body has none (replay sets it).
	HeaderHappenedAt = "CG-Happened-At"
	// HeaderConfiguration is the mapping a record (account, contact) is
	// imported with, in place of CG_ACCOUNT_CONFIGURATION or
	// CG_CONTACT_CONFIGURATION.
	HeaderConfiguration = "CG-Configuration"
)
