package schemas

import (
	"encoding/json"
	"fmt"
	"io"
)

// streamReport is one line of `cgworker validate` output.
type streamReport struct {
	Line      int                 `json:"line"`
	ErrorKind ErrorKind           `json:"error_kind"`
	Errors    map[string][]string `json:"errors"`
}

// ValidateStream validates kind documents read from r and writes one JSON
// line to w for each invalid one: {"line": N, "error_kind": "...",
// "errors": {field: [messages]}}, N being the 1-based line where the
// document starts. It returns how many were invalid; err is a read or
// write failure only.
//
// The input is split as ReadDocuments splits it, so each document is
// checked exactly as `cgworker publish` would send it; one larger than
// MaxBodyBytes is reported as over-size without being held in memory.
func ValidateStream(v *Validator, kind Kind, r io.Reader, w io.Writer) (invalid int, err error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err = ReadDocuments(r, func(d Document) error {
		var se *Error
		if d.TooLong {
			se = oversizeError()
		} else {
			_, se = v.validate(kind, d.Data)
		}
		if se == nil {
			return nil
		}
		invalid++
		if werr := enc.Encode(streamReport{Line: d.Line, ErrorKind: se.Kind, Errors: se.Fields}); werr != nil {
			return fmt.Errorf("write report: %w", werr)
		}
		return nil
	})
	return invalid, err
}

// oversizeError is the error for a body over MaxBodyBytes, from Validate
// and ValidateStream alike.
func oversizeError() *Error {
	return newError(Schema, map[string][]string{
		BodyKey: {fmt.Sprintf("The body may not be greater than %d bytes.", MaxBodyBytes)},
	})
}
