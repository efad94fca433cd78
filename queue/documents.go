package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// maxSingleDocument bounds how much input ReadDocuments holds in memory
// to find out whether a multi-line input is one JSON value. Larger inputs
// are read line by line (no broker takes such a message anyway).
const maxSingleDocument = 64 << 20

// ReadDocuments splits input the way `cgworker validate` and `cgworker
// publish` read it: when the whole input is one JSON value (a pretty-printed
// document, say) it is one document; otherwise every non-empty line is one
// document (NDJSON), valid JSON or not. fn gets each document with
// surrounding white space trimmed and the 1-based line it starts on; an
// error from fn stops the reading and is returned. NDJSON input is
// streamed, so its size is not limited by memory. fn may keep doc.
func ReadDocuments(r io.Reader, fn func(line int, doc []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var head []byte // raw input read so far
	lineNo := 0

	// The first non-empty line decides: a complete JSON value on its own
	// means NDJSON (or a one-line document, which is the same thing).
	var first []byte
	firstLine := 0
	for first == nil {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			lineNo++
			head = append(head, raw...)
			if t := bytes.TrimSpace(raw); len(t) > 0 {
				first, firstLine = t, lineNo
			}
		}
		if err == io.EOF {
			if first == nil {
				return nil
			}
			return fn(firstLine, first)
		}
		if err != nil {
			return err
		}
	}

	if !json.Valid(first) {
		// Perhaps a document spread over lines: read the whole input.
		rest, err := io.ReadAll(io.LimitReader(br, maxSingleDocument-int64(len(head))+1))
		if err != nil {
			return err
		}
		head = append(head, rest...)
		if len(head) <= maxSingleDocument {
			if whole := bytes.TrimSpace(head); json.Valid(whole) {
				return fn(firstLine, whole)
			}
		}
	}
	return readLines(io.MultiReader(bytes.NewReader(head), br), fn)
}

// readLines calls fn for every non-empty line of r.
func readLines(r io.Reader, fn func(line int, doc []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		raw, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(raw); len(t) > 0 {
			if ferr := fn(lineNo, t); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
