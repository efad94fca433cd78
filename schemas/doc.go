// Package schemas validates inbound events against JSON Schemas and
// explains failures in the API's own 422 shape (README, "Events").
//
// The built-in activity.json, account.json and contact.json (JSON Schema
// 2020-12, embedded) can each be replaced by a file of the same name in
// CG_SCHEMAS_DIR, since record field names are each customer's mapping.
// Format assertion is on, with custom formats any schema may use:
// cg-happened-at (the accepted happened_at forms, see NormalizeHappenedAt),
// cg-email, cg-phone and cg-contact (email or phone).
//
// Every failure is an *Error whose Fields map field names (a dotted path for
// nested fields) to messages in Laravel's wording, as the API words its 422
// ("The type field is required.", "The happened at is not a valid date.").
// Errors about the body as a whole use the key "body" (BodyKey): larger than
// MaxBodyBytes (kind schema, checked before parsing), not JSON (kind
// malformed, with encoding/json's reason and the 0-based offset of the
// offending byte), or not an object (kind schema). An unknown field's key
// and message keep its exact name, so a typo shows: "The happend_at field is
// not allowed.". The messages of each field are sorted, and Summary lists
// them on one line by field name, capped at about 1 KiB.
//
// For activities, an empty string in contact, reference or happened_at
// means the member is absent: it is removed before the schema applies, and
// RewriteActivity leaves it out of what is sent. RewriteActivity otherwise
// copies members byte for byte, so numbers are never rounded through
// float64.
//
// ReadDocuments splits the input of `cgworker validate` and `cgworker
// publish` (one JSON document, or NDJSON) for both; ValidateStream is the
// core of `cgworker validate`.
package schemas
