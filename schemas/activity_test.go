package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateActivityFields(t *testing.T) {
	t.Parallel()
	v := validator(t)
	tests := []struct {
		name    string
		body    string
		want    ActivityFields
		wantErr bool
	}{
		{"both given", `{"account":"a","type":"t","source":"s","reference":"ab12","happened_at":"2019-03-06 10:00:00 +0530"}`,
			ActivityFields{Reference: "ab12", HappenedAt: "2019-03-06 04:30:00"}, false},
		{"neither", `{"account":"a","type":"t","source":"s"}`, ActivityFields{}, false},
		{"empty means absent", `{"account":"a","type":"t","source":"s","reference":"","happened_at":""}`, ActivityFields{}, false},
		{"escaped reference", `{"account":"a","type":"t","source":"s","reference":"a\"b\u00e9"}`,
			ActivityFields{Reference: `a"bé`}, false},
		{"invalid body keeps the reference", `{"account":"","type":"t","source":"s","reference":"ab12","happened_at":"06-10-2019"}`,
			ActivityFields{Reference: "ab12", HappenedAt: "2019-10-06 00:00:00"}, true},
		{"bad date", `{"account":"a","type":"t","source":"s","reference":"ab12","happened_at":"2019-02-30"}`,
			ActivityFields{Reference: "ab12"}, true},
		{"not an object", `[]`, ActivityFields{}, true},
		{"malformed", `{`, ActivityFields{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.ValidateActivity([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("fields = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRewriteActivity(t *testing.T) {
	t.Parallel()
	v := validator(t)
	const ref, at = "cgw-0123", "2019-10-06 10:00:00"
	tests := []struct {
		name           string
		body           string
		reference, hap string
		want           string
	}{
		{"numbers and order kept byte for byte",
			`{"type":"t", "account" : "a","source":"s","additional_information_object":{"n": 1.000000000000000001, "big":12345678901234567890,"e":1E+400, "s":"\u00e9\/"}}`,
			ref, at,
			`{"type":"t","account":"a","source":"s","additional_information_object":{"n": 1.000000000000000001, "big":12345678901234567890,"e":1E+400, "s":"\u00e9\/"},"reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
		{"replaced in place",
			`{"reference":"mine","account":"a","happened_at":"06-10-2019","type":"t","source":"s"}`,
			"mine", at,
			`{"reference":"mine","account":"a","happened_at":"2019-10-06 10:00:00","type":"t","source":"s"}`},
		{"empty optionals dropped",
			"{\n  \"contact\": \"\",\n  \"account\": \"a\",\n  \"reference\": \"\",\n  \"type\": \"t\",\n  \"happened_at\": \"\",\n  \"source\": \"s\"\n}\n",
			ref, at,
			`{"account":"a","reference":"cgw-0123","type":"t","happened_at":"2019-10-06 10:00:00","source":"s"}`},
		{"contact kept",
			`{"account":"a","contact":"joe@example.com","type":"t","source":"s"}`,
			ref, at,
			`{"account":"a","contact":"joe@example.com","type":"t","source":"s","reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
		{"escaped names recognised",
			`{"\u0063ontact":"","account":"a","type":"t","source":"s","re\u0066erence":"x"}`,
			ref, at,
			`{"account":"a","type":"t","source":"s","reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
		{"last duplicate counts",
			`{"contact":"joe@example.com","account":"a","type":"t","source":"s","contact":"","reference":"x","reference":"y"}`,
			ref, at,
			`{"account":"a","type":"t","source":"s","reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
		{"values escaped",
			`{"account":"a","type":"t","source":"s"}`,
			"a\"b\\c\n\x01<é>\u2028", at,
			`{"account":"a","type":"t","source":"s","reference":"a\"b\\c\n\u0001<é>\u2028","happened_at":"2019-10-06 10:00:00"}`},
		{"empty value removes",
			`{"account":"a","reference":"mine","type":"t","source":"s"}`,
			"", "",
			`{"account":"a","type":"t","source":"s"}`},
		{"escapes inside kept values",
			`{"account":"a\\","type":"t\"}","source":"s","additional_information_object":{"q":"a\"}b\\","r":"\\","\"":"]"}}`,
			ref, at,
			`{"account":"a\\","type":"t\"}","source":"s","additional_information_object":{"q":"a\"}b\\","r":"\\","\"":"]"},"reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
		{"empty object", `{}`, ref, at, `{"reference":"cgw-0123","happened_at":"2019-10-06 10:00:00"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := RewriteActivity([]byte(tt.body), tt.reference, tt.hap)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
			if !json.Valid(out) {
				t.Fatal("output is not JSON")
			}
			if strings.Contains(tt.want, `"account"`) {
				f, err := v.ValidateActivity(out)
				if err != nil {
					t.Fatalf("output does not validate: %v", err)
				}
				if f.Reference != tt.reference || f.HappenedAt != tt.hap {
					t.Errorf("output fields = %+v", f)
				}
			}
		})
	}
}

func TestRewriteActivityNotObject(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `[]`, `null`, `"x"`, `{"a":1`, `{"a" 1}`, `{"a":1,}`, `{} {}`, `{"a":[1}`} {
		if out, err := RewriteActivity([]byte(body), "r", "2019-10-06 00:00:00"); err == nil {
			t.Errorf("RewriteActivity(%q) = %s, want an error", body, out)
		}
	}
}

func TestTopLevelMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, key string
		want            string
		ok              bool
	}{
		{"number kept raw", `{"a":1,"number_customergauge": 12345678901234567890 ,"b":2}`, "number_customergauge", "12345678901234567890", true},
		{"string", `{"n":"a\"b"}`, "n", `"a\"b"`, true},
		{"object value", ` { "x" : {"n":1,"s":"}"} } `, "x", `{"n":1,"s":"}"}`, true},
		{"nested member not top level", `{"x":{"n":1}}`, "n", "", false},
		{"inside a string is not a member", `{"x":"\"n\":1"}`, "n", "", false},
		{"escaped name", `{"\u006e":true}`, "n", "true", true},
		{"last duplicate counts", `{"n":1,"n":2}`, "n", "2", true},
		{"absent", `{"a":1}`, "n", "", false},
		{"empty object", `{}`, "n", "", false},
		{"null", `{"n":null}`, "n", "null", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := TopLevelMember([]byte(tt.body), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || string(got) != tt.want {
				t.Errorf("TopLevelMember = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	for _, body := range []string{``, `[]`, `null`, `"n"`, `{"n":1`, `{"n" 1}`, `{"n":1,}`, `{} {}`, `{"a":[1}`, `{"n":1}x`} {
		if v, ok, err := TopLevelMember([]byte(body), "n"); err == nil {
			t.Errorf("TopLevelMember(%q) = %q, %v, want an error", body, v, ok)
		}
	}
}

// TestCheckReference holds the CG-Reference header to what the built-in
// schema asks of the body field: the same limit in characters (not
// bytes), in the same words.
func TestCheckReference(t *testing.T) {
	t.Parallel()
	v := validator(t)
	atLimit := strings.Repeat("é", MaxReferenceChars) // 256 bytes, 128 characters
	over := atLimit + "x"
	for _, ref := range []string{"r-1", atLimit, over} {
		_, bodyErr := v.ValidateActivity(activity(t, map[string]any{"reference": ref}))
		msg := CheckReference(ref)
		if (bodyErr == nil) != (msg == "") {
			t.Fatalf("%d characters: the body field says %v, the header check %q", len([]rune(ref)), bodyErr, msg)
		}
		if bodyErr != nil {
			want := bodyErr.(*Error).Fields["reference"]
			if len(want) != 1 || want[0] != msg {
				t.Errorf("header check says %q, the body field %q", msg, want)
			}
		}
	}
	if msg := CheckReference("ref-\xff"); msg == "" {
		t.Error("a reference that is not UTF-8 passed")
	}
}
