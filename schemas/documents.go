package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Document is one document of the input ReadDocuments splits.
type Document struct {
	// Line is the 1-based input line the document starts on.
	Line int
	// Data is the document with surrounding white space trimmed, valid
	// JSON or not; nil when TooLong. The callee may keep it.
	Data []byte
	// TooLong says the document is larger than MaxBodyBytes, so the API
	// would refuse it; its bytes were not kept.
	TooLong bool
}

// ReadDocuments splits r the way `cgworker validate` and `cgworker publish`
// read their input (README, "Commands") and calls fn with each document
// in order; an error from fn stops the reading and is returned as is.
//
// The input is either one JSON document, possibly spread over many lines,
// or NDJSON: one document per non-blank line, valid JSON or not. It is one
// document when the first non-blank line is not JSON by itself and the
// whole input is; otherwise every non-blank line is a document. Blank
// lines are skipped. Memory stays bounded by about twice MaxBodyBytes
// whatever the input: a line longer than MaxBodyBytes, or one multi-line
// document that outgrows it, is passed on as TooLong without its bytes.
func ReadDocuments(r io.Reader, fn func(d Document) error) error {
	dr := documentReader{in: newLineReader(r), fn: fn}
	return dr.run()
}

type documentReader struct {
	in *lineReader
	fn func(Document) error
}

func (dr *documentReader) run() error {
	// The first non-blank line decides.
	var first line
	for {
		l, err := dr.in.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !l.blank() {
			first = l
			break
		}
	}
	if first.tooLong || json.Valid(first.data) {
		if err := dr.emitLine(first); err != nil {
			return err
		}
		return dr.lines()
	}

	// Perhaps one multi-line document: gather the rest, up to the size
	// limit, and see.
	held := []line{first}
	doc := bytes.Clone(first.data)
	for {
		l, err := dr.in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		held = append(held, l)
		doc = append(doc, '\n')
		doc = append(doc, l.data...)
		if l.tooLong || len(doc) > MaxBodyBytes+1 {
			if isPrefixOfOneValue(doc) {
				// One document, too large: pass it on once and drain.
				if err := dr.fn(Document{Line: first.number, TooLong: true}); err != nil {
					return err
				}
				return dr.drain()
			}
			return dr.replay(held, true)
		}
	}
	if json.Valid(doc) {
		return dr.emit(first.number, doc)
	}
	return dr.replay(held, false)
}

// replay passes held lines on one by one, then, if more may follow, the
// rest.
func (dr *documentReader) replay(held []line, more bool) error {
	for _, l := range held {
		if err := dr.emitLine(l); err != nil {
			return err
		}
	}
	if !more {
		return nil
	}
	return dr.lines()
}

// lines passes every remaining line on as its own document.
func (dr *documentReader) lines() error {
	for {
		l, err := dr.in.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := dr.emitLine(l); err != nil {
			return err
		}
	}
}

// drain reads to the end, so that a read failure is still reported.
func (dr *documentReader) drain() error {
	for {
		_, err := dr.in.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (dr *documentReader) emitLine(l line) error {
	if l.blank() {
		return nil
	}
	if l.tooLong {
		return dr.fn(Document{Line: l.number, TooLong: true})
	}
	return dr.emit(l.number, l.data)
}

func (dr *documentReader) emit(number int, data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > MaxBodyBytes {
		// A gathered document may be just over the limit.
		return dr.fn(Document{Line: number, TooLong: true})
	}
	return dr.fn(Document{Line: number, Data: data})
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
	data    []byte // nil when tooLong; never shares memory with another line
	tooLong bool   // longer than MaxBodyBytes: not kept
}

func (l line) blank() bool { return !l.tooLong && len(bytes.TrimSpace(l.data)) == 0 }

// lineReader reads lines of any length, keeping at most MaxBodyBytes+2
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
				// buf starts nil, so it never aliases the bufio buffer.
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
