package cgapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestURLsForRegion(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"eu", "us", "au"} {
		auth, imports, api, err := URLsForRegion(r)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if want := "https://auth." + r + ".customergauge.com/oauth2/token"; auth != want {
			t.Errorf("auth = %q, want %q", auth, want)
		}
		if want := "https://imports.api." + r + ".customergauge.com"; imports != want {
			t.Errorf("imports = %q, want %q", imports, want)
		}
		if want := "https://api." + r + ".customergauge.com"; api != want {
			t.Errorf("api = %q, want %q", api, want)
		}
	}
	for _, r := range []string{"", "EU", "uk"} {
		if _, _, _, err := URLsForRegion(r); err == nil || !strings.Contains(err.Error(), "CG_REGION") {
			t.Errorf("region %q: err = %v, want one naming CG_REGION", r, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	const secret = "very-secret-value"
	good := Config{
		AuthURL: "https://auth.eu.customergauge.com/oauth2/token", ImportsURL: "https://imports.api.eu.customergauge.com/",
		APIURL: "https://api.eu.customergauge.com//", ClientID: "id", ClientSecret: secret,
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.activitiesURL != "https://imports.api.eu.customergauge.com/activities/" ||
		c.recordsURL != "https://imports.api.eu.customergauge.com/records/" ||
		c.syncURL != "https://api.eu.customergauge.com/v7/rest/sync/responses" {
		t.Errorf("trailing slashes not tolerated: %q %q %q", c.activitiesURL, c.recordsURL, c.syncURL)
	}
	if c.timeout != DefaultTimeout || !slices.Equal(c.userAgent, []string{"cgworker"}) {
		t.Errorf("defaults: timeout %s, user agent %q", c.timeout, c.userAgent)
	}

	cases := []struct {
		name    string
		edit    func(*Config)
		setting string
	}{
		{"no auth url", func(c *Config) { c.AuthURL = "" }, "CG_AUTH_URL"},
		{"relative auth url", func(c *Config) { c.AuthURL = "/oauth2/token" }, "CG_AUTH_URL"},
		{"ftp imports url", func(c *Config) { c.ImportsURL = "ftp://imports.example.com" }, "CG_IMPORTS_URL"},
		{"hostless api url", func(c *Config) { c.APIURL = "https://" }, "CG_API_URL"},
		{"api url with query", func(c *Config) { c.APIURL = "https://api.example.com?x=1" }, "CG_API_URL"},
		{"garbage api url", func(c *Config) { c.APIURL = "http://[::1" }, "CG_API_URL"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "CG_CLIENT_ID"},
		{"no client secret", func(c *Config) { c.ClientSecret = "" }, "CG_CLIENT_SECRET"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "CG_HTTP_TIMEOUT"},
		{"password in url", func(c *Config) { c.AuthURL = "https://u:" + secret + "@auth.example.com/t" }, "CG_AUTH_URL"},
	}
	for _, tc := range cases {
		cfg := good
		tc.edit(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.setting+":") {
			t.Errorf("%s: err = %v, want one starting with %s", tc.name, err, tc.setting)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q contains the secret", tc.name, err)
		}
		var se *SettingError
		if verr := cfg.Validate(); !errors.As(verr, &se) || se.Setting != tc.setting || verr.Error() != err.Error() {
			t.Errorf("%s: Validate = %v, want the *SettingError New gave (%v)", tc.name, verr, err)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate of a good config: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
		{"99999999999999999999", 0}, // overflows int64: unparsable
	}
	for _, tc := range cases {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestDataErrorParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		status  int
		body    string
		message string
		errors  map[string][]string
	}{
		{"laravel", 422, `{"message":"The given data was invalid.","errors":{"type":["The type field is required."],"happened_at":["a","b"]}}`,
			"The given data was invalid.", map[string][]string{"type": {"The type field is required."}, "happened_at": {"a", "b"}}},
		{"lone string", 422, `{"message":"x","errors":{"contact":"unknown"}}`, "x", map[string][]string{"contact": {"unknown"}}},
		{"message only", 400, `{"message":"Bad JSON"}`, "Bad JSON", nil},
		{"html", 413, "<html><body>413 Request Entity Too Large</body></html>", "Request Entity Too Large", nil},
		{"empty", 400, "", "Bad Request", nil},
	}
	for _, tc := range cases {
		e := dataError(tc.status, []byte(tc.body))
		if e.Status != tc.status || e.Message != tc.message {
			t.Errorf("%s: status %d message %q, want %d %q", tc.name, e.Status, e.Message, tc.status, tc.message)
		}
		got, _ := json.Marshal(e.Errors)
		want, _ := json.Marshal(tc.errors)
		if string(got) != string(want) {
			t.Errorf("%s: errors %s, want %s", tc.name, got, want)
		}
	}
}

func TestRenewTime(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		lifetime, early time.Duration
	}{
		{time.Hour, 10 * time.Second},
		{2 * time.Second, 200 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		exp := start.Add(tc.lifetime)
		if got := renewTime(start, exp); !got.Equal(exp.Add(-tc.early)) {
			t.Errorf("lifetime %s: renew %s before expiry, want %s", tc.lifetime, exp.Sub(got), tc.early)
		}
	}
	if !renewTime(start, time.Time{}).IsZero() {
		t.Error("a token without expiry got a renewal time")
	}
}

func TestParseSyncPage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body    string
		n       int
		next    string
		wantErr bool
	}{
		{`{"data":[{"a":1}],"cursor":{"next":123}}`, 1, "123", false},
		{`{"data":[{"a":1}],"cursor":{"next":"abc"}}`, 1, "abc", false},
		{`{"data":[{"a":1}],"cursor":{"next":null}}`, 1, "", false},
		{`{"data":[{"a":1}],"cursor":{}}`, 1, "", false},
		{`{"data":[{"a":1}]}`, 1, "", false},
		{`{"data":[],"cursor":null}`, 0, "", false},
		{`{"data":[],"cursor":{"next":12345678901234567890}}`, 0, "12345678901234567890", false},
		{`{"cursor":{"next":1}}`, 0, "", true},
		{`{"data":null}`, 0, "", true},
		{`{"data":[],"cursor":{"next":{}}}`, 0, "", true},
		{`<html>`, 0, "", true},
		{``, 0, "", true},
	}
	for _, tc := range cases {
		p, err := parseSyncPage([]byte(tc.body))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.body, err, tc.wantErr)
			continue
		}
		if len(p.Data) != tc.n || p.Next != tc.next {
			t.Errorf("%s: %d items, next %q; want %d, %q", tc.body, len(p.Data), p.Next, tc.n, tc.next)
		}
	}
	// Items come back byte for byte, spacing and big numbers included.
	item := `{ "number_customergauge": 12345678901234567890123, "nps": 10.50 }`
	p, err := parseSyncPage([]byte(`{"data":[` + item + `]}`))
	if err != nil || string(p.Data[0]) != item {
		t.Errorf("item = %s, %v; want %s", p.Data[0], err, item)
	}
}

func TestSyncQueryValues(t *testing.T) {
	t.Parallel()
	q := SyncQuery{PerPage: 100, Cursor: "42", With: []string{"tags", "questions"}, NumberCustomerGauge: "7",
		Filter: "f-1", PeriodField: "date_creation", PeriodStart: "2023-01-05", PeriodEnd: "2023-01-25"}
	v := q.values()
	if v.Get("per_page") != "100" || v.Get("cursor") != "42" || strings.Join(v["with[]"], ",") != "tags,questions" ||
		v.Get("number_customergauge") != "7" || v.Get("filter") != "f-1" || v.Get("period[field]") != "date_creation" ||
		v.Get("period[start]") != "2023-01-05" || v.Get("period[end]") != "2023-01-25" {
		t.Errorf("values = %v", v)
	}
	if v := (SyncQuery{}).values(); len(v) != 0 {
		t.Errorf("empty query gave %v", v)
	}
}

func TestClassOf(t *testing.T) {
	t.Parallel()
	wrapped := func(err error) error { return fmt.Errorf("delivering: %w", err) }
	cases := []struct {
		err        error
		class      Class
		status     int
		retryAfter time.Duration
		retryable  bool
		outage     bool
	}{
		{nil, ClassNone, 0, 0, false, false},
		{&DataError{Status: 422}, ClassData, 422, 0, false, false},
		{wrapped(&DataError{Status: 413}), ClassData, 413, 0, false, false},
		{&RateLimitError{RetryAfter: 7 * time.Second}, ClassRateLimit, 429, 7 * time.Second, true, false},
		{wrapped(&RateLimitError{}), ClassRateLimit, 429, 0, true, false},
		{&AuthError{Status: 401, Err: errors.New("x")}, ClassAuth, 401, 0, true, true},
		{&AuthError{Err: errors.New("unreachable")}, ClassAuth, 0, 0, true, true},
		{&ConfigError{Status: 404}, ClassConfig, 404, 0, true, true},
		{&TransientError{Status: 502, Err: errors.New("x")}, ClassTransient, 502, 0, true, true},
		{&TransientError{Err: context.DeadlineExceeded}, ClassTransient, 0, 0, true, true},
		{errors.New("anything else"), ClassTransient, 0, 0, true, true},
		{fmt.Errorf("cgapi: PUT x: %w", context.Canceled), ClassCanceled, 0, 0, false, false},
		{&TransientError{Err: context.Canceled}, ClassCanceled, 0, 0, false, false},
	}
	for _, tc := range cases {
		if got := ClassOf(tc.err); got != tc.class {
			t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.class)
		}
		if got := StatusOf(tc.err); got != tc.status {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.status)
		}
		if got := RetryAfterOf(tc.err); got != tc.retryAfter {
			t.Errorf("RetryAfterOf(%v) = %s, want %s", tc.err, got, tc.retryAfter)
		}
		if got := Retryable(tc.err); got != tc.retryable {
			t.Errorf("Retryable(%v) = %t, want %t", tc.err, got, tc.retryable)
		}
		if got := IsOutage(tc.err); got != tc.outage {
			t.Errorf("IsOutage(%v) = %t, want %t", tc.err, got, tc.outage)
		}
	}
	if s := Class(99).String(); s != "Class(99)" {
		t.Errorf("unknown class prints as %q", s)
	}
}

func TestRateLimitHeaderNamesAreCanonical(t *testing.T) {
	t.Parallel()
	for _, h := range []string{headerLimit, headerRemaining, headerReset} {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("%q is read as %q: use the canonical form", h, c)
		}
	}
}
