package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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
// The input is either one JSON document, possibly spread over many lines,
// or NDJSON: one document per non-empty line. It is one document when the
// first non-blank line is not JSON by itself and the whole input is;
// otherwise every non-blank line is a document. A line longer than
// MaxBodyBytes is reported as over-size without being held in memory.
func ValidateStream(v *Validator, kind Kind, r io.Reader, w io.Writer) (invalid int, err error) {
	s := stream{v: v, kind: kind, in: newLineReader(r), enc: json.NewEncoder(w)}
	s.enc.SetEscapeHTML(false)
	return s.run()
}

type stream struct {
	v       *Validator
	kind    Kind
	in      *lineReader
	enc     *json.Encoder
	invalid int
}

func (s *stream) run() (int, error) {
	// The first non-blank line decides.
	var first line
	for {
		l, err := s.in.next()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if !l.blank() {
			first = l
			break
		}
	}
	if first.tooLong || json.Valid(first.data) {
		if err := s.check(first); err != nil {
			return s.invalid, err
		}
		return s.lines()
	}

	// Perhaps one multi-line document: gather the rest, up to the size
	// limit, and see.
	held := []line{first}
	doc := bytes.Clone(first.data)
	for {
		l, err := s.in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.invalid, err
		}
		held = append(held, l)
		doc = append(doc, '\n')
		doc = append(doc, l.data...)
		if l.tooLong || len(doc) > MaxBodyBytes+1 {
			if isPrefixOfOneValue(doc) {
				// One document, too large: report it once and drain.
				return s.oversize(first.number)
			}
			return s.replay(held, true)
		}
	}
	if json.Valid(doc) {
		if err := s.report(first.number, s.v.Validate(s.kind, bytes.TrimSpace(doc))); err != nil {
			return s.invalid, err
		}
		return s.invalid, nil
	}
	return s.replay(held, false)
}

// replay checks held lines one by one, then, if more may follow, the rest.
func (s *stream) replay(held []line, more bool) (int, error) {
	for _, l := range held {
		if err := s.check(l); err != nil {
			return s.invalid, err
		}
	}
	if !more {
		return s.invalid, nil
	}
	return s.lines()
}

// lines checks every remaining line as its own document.
func (s *stream) lines() (int, error) {
	for {
		l, err := s.in.next()
		if err == io.EOF {
			return s.invalid, nil
		}
		if err != nil {
			return s.invalid, err
		}
		if err := s.check(l); err != nil {
			return s.invalid, err
		}
	}
}

func (s *stream) check(l line) error {
	if l.blank() {
		return nil
	}
	if l.tooLong {
		return s.report(l.number, oversizeError())
	}
	return s.report(l.number, s.v.Validate(s.kind, l.data))
}

func (s *stream) oversize(number int) (int, error) {
	if err := s.report(number, oversizeError()); err != nil {
		return s.invalid, err
	}
	for {
		_, err := s.in.next()
		if err == io.EOF {
			return s.invalid, nil
		}
		if err != nil {
			return s.invalid, err
		}
	}
}

func (s *stream) report(number int, err error) error {
	if err == nil {
		return nil
	}
	s.invalid++
	var se *Error
	if !errors.As(err, &se) {
		se = newError(Schema, map[string][]string{BodyKey: {err.Error()}})
	}
	if werr := s.enc.Encode(streamReport{Line: number, ErrorKind: se.Kind, Errors: se.Fields}); werr != nil {
		return fmt.Errorf("write report: %w", werr)
	}
	return nil
}

func oversizeError() *Error {
	return newError(Schema, map[string][]string{
		BodyKey: {fmt.Sprintf("The body may not be greater than %d bytes.", MaxBodyBytes)},
	})
}

// isPrefixOfOneValue says whether b is the start of a single JSON value cut
// short, rather than broken JSON.
func isPrefixOfOneValue(b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	err := d.Decode(&raw)
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// line is one input line without its line ending.
type line struct {
	number  int
	data    []byte // nil when tooLong
	tooLong bool   // longer than MaxBodyBytes: not kept
}

func (l line) blank() bool { return !l.tooLong && len(bytes.TrimSpace(l.data)) == 0 }

// lineReader reads lines of any length, keeping at most MaxBodyBytes+1
// bytes of one.
type lineReader struct {
	br     *bufio.Reader
	number int
	done   bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, or io.EOF after the last one.
func (lr *lineReader) next() (line, error) {
	if lr.done {
		return line{}, io.EOF
	}
	var buf []byte
	tooLong := false
	for {
		frag, err := lr.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > MaxBodyBytes+2 { // +2: the line ending
				tooLong, buf = true, nil
			} else {
				buf = append(buf, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			lr.done = true
			if len(buf) == 0 && !tooLong && len(frag) == 0 {
				return line{}, io.EOF
			}
		} else if err != nil {
			return line{}, err
		}
		break
	}
	lr.number++
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	if !tooLong && len(buf) > MaxBodyBytes {
		tooLong, buf = true, nil
	}
	return line{number: lr.number, data: buf, tooLong: tooLong}, nil
}
