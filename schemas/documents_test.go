package schemas

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// doc is a Document as the tests compare it.
type doc struct {
	Line    int
	Data    string
	TooLong bool
}

// readAll returns every document of in. It keeps the Data slices until the
// end, so a reader that reused memory would show.
func readAll(t *testing.T, in string) []doc {
	t.Helper()
	var kept []Document
	if err := ReadDocuments(strings.NewReader(in), func(d Document) error {
		kept = append(kept, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []doc
	for _, d := range kept {
		if d.TooLong && d.Data != nil {
			t.Errorf("line %d: TooLong with %d bytes of data kept", d.Line, len(d.Data))
		}
		got = append(got, doc{d.Line, string(d.Data), d.TooLong})
	}
	return got
}

func TestReadDocuments(t *testing.T) {
	t.Parallel()
	long := `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	tests := []struct {
		name, in string
		want     []doc
	}{
		{"empty", "", nil},
		{"blank lines only", "\n  \n\t\n\r\n", nil},
		{"one line", `{"a":1}`, []doc{{1, `{"a":1}`, false}}},
		{"one line with newline", "{\"a\":1}\n", []doc{{1, `{"a":1}`, false}}},
		{"pretty", "\n{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n\n", []doc{{2, "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}", false}}},
		{"pretty with CRLF", "{\r\n  \"a\": 1\r\n}\r\n", []doc{{1, "{\n  \"a\": 1\n}", false}}},
		{"pretty spanning a string value", "[\n\"a\",\n\"b\"\n]", []doc{{1, "[\n\"a\",\n\"b\"\n]", false}}},
		{"ndjson with blank lines and CRLF", "{\"a\":1}\n{\"b\":2}\r\n\n  {\"c\":3}  \r\n", []doc{{1, `{"a":1}`, false}, {2, `{"b":2}`, false}, {4, `{"c":3}`, false}}},
		{"ndjson with a broken line", "{\"a\":1}\n{\"b\":\n{\"c\":3}", []doc{{1, `{"a":1}`, false}, {2, `{"b":`, false}, {3, `{"c":3}`, false}}},
		{"broken first line", "not json\n{\"b\":2}\n", []doc{{1, `not json`, false}, {2, `{"b":2}`, false}}},
		{"broken pretty", "{\n\"a\": 1\n", []doc{{1, `{`, false}, {2, `"a": 1`, false}}},
		{"scalars", "1\n\"x\"\nnull", []doc{{1, `1`, false}, {2, `"x"`, false}, {3, `null`, false}}},
		{"over-size line", "{\"a\":1}\n" + long + "\n\n{\"c\":3}\n", []doc{{1, `{"a":1}`, false}, {2, "", true}, {4, `{"c":3}`, false}}},
		{"over-size first line without newline", long, []doc{{1, "", true}}},
		{"over-size line after a broken first line", "not json\n" + long + "\n{}\n", []doc{{1, `not json`, false}, {2, "", true}, {3, `{}`, false}}},
		{"over-size line inside a pretty document", "{\n\"a\":\n" + long + "\n}\n", []doc{{1, "", true}}},
		{"over-size pretty document", "\n{\n\"a\": 1,\n" + strings.Repeat("\"x\": 1,\n", MaxBodyBytes/8) + "\"b\": 2}\n", []doc{{2, "", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := readAll(t, tt.in); !reflect.DeepEqual(got, tt.want) {
				if len(tt.in) > 200 {
					t.Errorf("got %d documents %.200v\nwant %+v", len(got), got, tt.want)
				} else {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
			}
		})
	}
}

// TestReadDocumentsLimit pins the boundary: a document of exactly
// MaxBodyBytes is kept, one byte more is not, on one line or several.
func TestReadDocumentsLimit(t *testing.T) {
	t.Parallel()
	value := func(size int) string { return `"` + strings.Repeat("x", size-2) + `"` }
	for _, tt := range []struct {
		name    string
		in      string
		line    int
		tooLong bool
	}{
		{"line at the limit", value(MaxBodyBytes) + "\r\n", 1, false},
		{"line over the limit", value(MaxBodyBytes+1) + "\r\n", 1, true},
		{"pretty at the limit", "\n[\n" + value(MaxBodyBytes-4) + "\n]\n", 2, false},
		{"pretty over the limit", "\n[\n" + value(MaxBodyBytes-3) + "\n]\n", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, tt.in)
			if len(got) != 1 {
				t.Fatalf("got %d documents, want one", len(got))
			}
			if got[0].Line != tt.line || got[0].TooLong != tt.tooLong {
				t.Fatalf("got line %d TooLong %v, want line %d TooLong %v", got[0].Line, got[0].TooLong, tt.line, tt.tooLong)
			}
			if !tt.tooLong && len(got[0].Data) > MaxBodyBytes {
				t.Errorf("kept %d bytes", len(got[0].Data))
			}
		})
	}
}

func TestReadDocumentsStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	calls := 0
	err := ReadDocuments(strings.NewReader("1\n2\n3\n"), func(d Document) error {
		calls++
		if d.Line == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Errorf("err = %v after %d calls, want the callback's error after 2", err, calls)
	}
}

func TestReadDocumentsReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, in := range []string{"{\"a\":1}\n{\"b\"", "{\n\"a\""} {
		r := &failAfter{r: strings.NewReader(in), err: boom}
		err := ReadDocuments(r, func(Document) error { return nil })
		if !errors.Is(err, boom) {
			t.Errorf("%q: err = %v, want the read error", in, err)
		}
	}
}

// failAfter reads r, then fails with err instead of io.EOF.
type failAfter struct {
	r   *strings.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.r.Len() == 0 {
		return 0, f.err
	}
	return f.r.Read(p)
}
