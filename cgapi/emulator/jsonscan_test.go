package emulator

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

// scanMembers is forEachMember collected into a map, last duplicate winning.
func scanMembers(b []byte) (map[string]string, bool) {
	got := make(map[string]string)
	ok := forEachMember(b, func(k, v []byte) { got[string(k)] = string(v) })
	return got, ok
}

// checkScanAgainstDecoder compares forEachMember with encoding/json on valid
// JSON b.
func checkScanAgainstDecoder(t *testing.T, b []byte) {
	t.Helper()
	var want map[string]json.RawMessage
	isObject := json.Unmarshal(b, &want) == nil && want != nil
	got, ok := scanMembers(b)
	if ok != isObject {
		t.Fatalf("%s: object = %v, encoding/json says %v", b, ok, isObject)
	}
	if !ok {
		return
	}
	wantText := make(map[string]string, len(want))
	for k, v := range want {
		wantText[k] = string(bytes.TrimSpace(v))
	}
	if !maps.Equal(got, wantText) {
		t.Fatalf("%s: scanned %q, encoding/json %q", b, got, wantText)
	}
}

func TestForEachMember(t *testing.T) {
	t.Parallel()
	for _, b := range []string{
		`{}`,
		` { "a" : 1 , "b":"x" } `,
		`{"a":{"b":[1,{"c":"}"}]},"d":"\"}","e":[]}`,
		`{"acc\u006funt":"escaped key","k\"q":true}`,
		`{"a":1,"a":2}`,
		`{"n":-1.5e+3,"t":true,"f":false,"z":null}`,
		"{\n\t\"a\"\r\n:\n[ ]\n}",
		`[1]`, `"s"`, `null`, `3`,
	} {
		checkScanAgainstDecoder(t, []byte(b))
	}
}

func FuzzForEachMember(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":{"b":[1,"]"]},"c":"\\"}`, `{"x":1,"x":null}`, `[{}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if json.Valid(b) {
			checkScanAgainstDecoder(t, b)
		}
	})
}
