package responses

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestResponseNumber(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw  string
		want int64 // 0: no number
	}{
		{`{"number_customergauge": 3414}`, 3414},
		{` { "status":"response","number_customergauge" :"3414" , "x":1}`, 3414},
		{`{"a":{"number_customergauge":1},"b":[1,"}",{"c":"\"]"}],"number_customergauge":7}`, 7},
		{`{"s":"number_customergauge","number_customergauge":9}`, 9},
		{`{"number_\u0063ustomergauge":12}`, 12},
		{`{"number_customergauge":3414.0}`, 3414},
		{`{"number_customergauge":1e3}`, 1000},
		{"{\n\t\"number_customergauge\"\r\n:\n42\n}", 42},
		{`{"number_customergauge":null}`, 0},
		{`{"number_customergauge":"abc"}`, 0},
		{`{"number_customergauge":""}`, 0},
		{`{"number_customergauge":1.5}`, 0},
		{`{"number_customergauge":0}`, 0},
		{`{"number_customergauge":-4}`, 0},
		{`{"number_customergauge":true}`, 0},
		{`{"number_customergauge":{"v":1}}`, 0},
		{`{"nested":{"number_customergauge":5}}`, 0},
		{`{}`, 0},
		{`[{"number_customergauge":5}]`, 0},
		{`null`, 0},
		{`"number_customergauge"`, 0},
	}
	for _, c := range cases {
		got, err := responseNumber([]byte(c.raw))
		if c.want == 0 {
			if err == nil || !errors.Is(err, errNoNumber) {
				t.Errorf("%s: got %d, %v; want an errNoNumber", c.raw, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %d, %v; want %d", c.raw, got, err, c.want)
		}
	}
}

// FuzzResponseNumber checks the scanner against a full decode on any valid
// JSON object, duplicate and escaped keys included (the last occurrence
// counts for both).
func FuzzResponseNumber(f *testing.F) {
	f.Add(`{"number_customergauge": 3414, "tags":[{"label":"x"}]}`)
	f.Add(`{"a":"\\","number_customergauge":"77"}`)
	f.Add(`{"number_customergauge":null}`)
	f.Add(`{"number_customergauge":1,"number_\u0063ustomergauge":2}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &obj) != nil || obj == nil {
			return
		}
		got, err := responseNumber([]byte(raw))
		v, ok := obj[numberKey]
		if !ok {
			if err == nil {
				t.Fatalf("%s: got %d without the key", raw, got)
			}
			return
		}
		want, werr := parseNumber(v)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("%s: scanner %d, %v; decoder %d, %v", raw, got, err, want, werr)
		}
	})
}
