package schemas

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestValidateStream(t *testing.T) {
	t.Parallel()
	v := validator(t)
	const valid = `{"account":"a","type":"t","source":"s"}`
	longLine := `{"account":"` + strings.Repeat("a", MaxBodyBytes) + `","type":"t","source":"s"}`
	tests := []struct {
		name  string
		kind  Kind
		input string
		want  []streamReport
	}{
		{name: "empty input", kind: Activity, input: ""},
		{name: "blank lines only", kind: Activity, input: "\n  \n\r\n"},
		{name: "one valid line", kind: Activity, input: valid},
		{name: "one pretty document", kind: Activity, input: "\n\n{\n  \"account\": \"a\",\n  \"type\": \"t\",\n  \"source\": \"s\"\n}\n"},
		{name: "one invalid pretty document", kind: Activity,
			input: "\n{\n  \"account\": \"\",\n  \"type\": \"t\",\n  \"source\": \"s\"\n}\n",
			want:  []streamReport{{Line: 2, ErrorKind: Schema, Errors: fields{"account": {"The account field is required."}}}}},
		{name: "ndjson mixed", kind: Activity,
			input: valid + "\n\n" + `{"account":"a","type":"t"}` + "\r\n" + valid + "\n" + `{"account":` + "\n" + `[]` + "\n",
			want: []streamReport{
				{Line: 3, ErrorKind: Schema, Errors: fields{"source": {"The source field is required."}}},
				{Line: 5, ErrorKind: Malformed, Errors: fields{"body": {"The body is not valid JSON: unexpected end of JSON input at offset 11."}}},
				{Line: 6, ErrorKind: Schema, Errors: fields{"body": {"The body must be an object."}}},
			}},
		{name: "broken first line", kind: Contact,
			input: "{\"Email\":\n{\"Email\":\"joe@example.com\"}\n{\"Phone\":\"x\"}\n",
			want: []streamReport{
				{Line: 1, ErrorKind: Malformed, Errors: fields{"body": {"The body is not valid JSON: unexpected end of JSON input at offset 9."}}},
				{Line: 3, ErrorKind: Schema, Errors: fields{"Phone": {"The Phone must be a valid phone number."}}},
			}},
		{name: "over-size line", kind: Activity,
			input: valid + "\n" + longLine + "\n" + `{}` + "\n",
			want: []streamReport{
				{Line: 2, ErrorKind: Schema, Errors: fields{"body": {"The body may not be greater than 2097152 bytes."}}},
				{Line: 3, ErrorKind: Schema, Errors: fields{
					"account": {"The account field is required."},
					"source":  {"The source field is required."},
					"type":    {"The type field is required."}}},
			}},
		{name: "over-size line without newline", kind: Activity, input: longLine,
			want: []streamReport{{Line: 1, ErrorKind: Schema, Errors: fields{"body": {"The body may not be greater than 2097152 bytes."}}}}},
		{name: "over-size pretty document", kind: Activity,
			input: "{\n\"account\": \"a\",\n" + strings.Repeat("\"x\": 1,\n", MaxBodyBytes/8) + "\"type\": \"t\"}\n",
			want:  []streamReport{{Line: 1, ErrorKind: Schema, Errors: fields{"body": {"The body may not be greater than 2097152 bytes."}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			n, err := ValidateStream(v, tt.kind, strings.NewReader(tt.input), &out)
			if err != nil {
				t.Fatal(err)
			}
			var got []streamReport
			dec := json.NewDecoder(&out)
			for {
				var r streamReport
				if err := dec.Decode(&r); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("output line is not JSON: %v", err)
				}
				got = append(got, r)
			}
			if n != len(got) {
				t.Errorf("invalid = %d, but %d lines written", n, len(got))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("reports = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

// TestValidateStreamOutputShape pins the exact bytes of one report line.
func TestValidateStreamOutputShape(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	n, err := ValidateStream(validator(t), Account, strings.NewReader(`{"Account Name":"<&>","x":[]}`), &out)
	if err != nil || n != 1 {
		t.Fatalf("n = %d, err = %v", n, err)
	}
	want := `{"line":1,"error_kind":"schema","errors":{"x":["The x must be a string, a number, a boolean or null."]}}` + "\n"
	if out.String() != want {
		t.Errorf("got  %s\nwant %s", out.String(), want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestValidateStreamWriteError(t *testing.T) {
	t.Parallel()
	_, err := ValidateStream(validator(t), Activity, strings.NewReader("{}\n"), failingWriter{})
	if err == nil {
		t.Fatal("a write failure must be returned")
	}
}
