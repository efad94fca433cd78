package cgapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
)

// bundle is one test's world: an emulator and a client of it.
type bundle struct {
	emu    *emulator.Server
	client *cgapi.Client
}

func setup(t *testing.T, opts emulator.Options, timeout time.Duration) bundle {
	t.Helper()
	opts.ClientID, opts.ClientSecret = "emu-client", secret
	emu := cgapitest.NewServer(t, opts)
	return bundle{emu: emu, client: newClient(t, emu.URL, emu.URL, timeout)}
}

func newClient(t testing.TB, base, imports string, timeout time.Duration) *cgapi.Client {
	t.Helper()
	c, err := cgapi.New(cgapi.Config{
		AuthURL: base + "/oauth2/token", ImportsURL: imports + "/", APIURL: base + "/",
		ClientID: "emu-client", ClientSecret: secret, Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const validActivity = `{"reference":"ref-1","account":"ACME","type":"Support Ticket","source":"Freshdesk","happened_at":"2019-10-06 22:34:45","n":1.10000000000000000001}`

// statuses lists the statuses the emulator answered on path, in order.
func statuses(emu *emulator.Server, path string) []int {
	var out []int
	for _, r := range emu.Requests() {
		if r.Path == path {
			out = append(out, r.Status)
		}
	}
	return out
}

func TestPutActivity(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)

	if err := b.client.PutActivity(t.Context(), []byte(validActivity)); err != nil {
		t.Fatal(err)
	}
	stored, ok := b.emu.ActivityByReference("ref-1")
	if !ok {
		t.Fatal("activity not stored")
	}
	if !bytes.Equal(stored.Body, []byte(validActivity)) {
		t.Errorf("body arrived as %s, want it unchanged", stored.Body)
	}
	for _, r := range b.emu.Requests() {
		if r.Path == emulator.ActivitiesPath && (r.Header.Get("User-Agent") != "cgworker" || r.Header.Get("Content-Type") != "application/json") {
			t.Errorf("headers %v", r.Header)
		}
	}
}

func TestPutRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)

	// Records are answered 200 with an empty body.
	if err := b.client.PutRecord(t.Context(), "account", json.RawMessage(`{"Account Name":"ACME","Employees":12}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.client.PutRecord(t.Context(), "contact", json.RawMessage(`{"Email":"joe@example.com","Account Name":"ACME"}`)); err != nil {
		t.Fatal(err)
	}
	if n := b.emu.RecordPuts("account", "ACME"); n != 1 {
		t.Errorf("account record PUTs = %d, want 1", n)
	}
	if n := b.emu.RecordPuts("contact", "joe@example.com"); n != 1 {
		t.Errorf("contact record PUTs = %d, want 1", n)
	}
}

func TestDataErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)
	ctx := t.Context()

	check := func(name string, err error, status int, fields ...string) *cgapi.DataError {
		t.Helper()
		var de *cgapi.DataError
		if !errors.As(err, &de) || de.Status != status {
			t.Errorf("%s: err = %v, want *DataError %d", name, err, status)
			return nil
		}
		for _, f := range fields {
			if len(de.Errors[f]) == 0 {
				t.Errorf("%s: no errors on %q in %v", name, f, de.Errors)
			}
		}
		if cgapi.Retryable(err) || cgapi.IsOutage(err) {
			t.Errorf("%s: a data error is retryable or an outage", name)
		}
		noSecret(t, err)
		return de
	}

	err := b.client.PutActivity(ctx, []byte(`{"account":"ACME","source":"x"}`))
	check("activity without type", err, 422, "type")

	err = b.client.PutActivity(ctx, []byte(`{"account":"ACME","type":"t","source":"s","contact":"nobody@example.com"}`))
	if de := check("unknown contact", err, 422, "contact"); de != nil && !de.OnlyField("contact") {
		t.Errorf("unknown contact: errors %v, want only contact", de.Errors)
	}

	err = b.client.PutRecord(ctx, "no-such-configuration", json.RawMessage(`{"Account Name":"ACME"}`))
	check("unknown configuration", err, 422, "configuration")

	err = b.client.PutRecord(ctx, "account", json.RawMessage(`{"Account Name":""}`))
	check("record without its required field", err, 422)

	err = b.client.PutActivity(ctx, []byte(`{"account":`))
	if de := check("not JSON", err, 400); de != nil && de.Message == "" {
		t.Error("400 without a message")
	}

	big := append([]byte(`{"account":"`), bytes.Repeat([]byte("a"), emulator.MaxBodyBytes)...)
	big = append(big, `"}`...)
	err = b.client.PutActivity(ctx, big)
	check("too large", err, 413)
}

func TestTokenRejectedOnceIsRenewed(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)
	ctx := t.Context()

	if err := b.client.PutActivity(ctx, []byte(validActivity)); err != nil {
		t.Fatal(err)
	}
	b.emu.ExpireTokens()
	if err := b.client.PutActivity(ctx, []byte(validActivity)); err != nil {
		t.Fatalf("call after the token expired server-side: %v", err)
	}
	if n := b.emu.TokensIssued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
	if got := fmt.Sprint(statuses(b.emu, emulator.ActivitiesPath)); got != "[200 401 200]" {
		t.Errorf("activity statuses %s, want [200 401 200]", got)
	}

	// 403 is treated alike.
	b.emu.FailNext(emulator.RecordsPath, http.StatusForbidden, 1)
	if err := b.client.PutRecord(ctx, "account", json.RawMessage(`{"Account Name":"ACME"}`)); err != nil {
		t.Fatalf("call after one 403: %v", err)
	}
	if n := b.emu.TokensIssued(); n != 3 {
		t.Errorf("%d tokens issued, want 3", n)
	}
}

func TestTokenRejectedTwiceIsAuthError(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Options{}, 5*time.Second)
			b.emu.FailNext(emulator.ActivitiesPath, status, 3)

			err := b.client.PutActivity(t.Context(), []byte(validActivity))
			var ae *cgapi.AuthError
			if !errors.As(err, &ae) || ae.Status != status || !cgapi.Retryable(err) || !cgapi.IsOutage(err) {
				t.Fatalf("err = %v, want a retryable *AuthError %d", err, status)
			}
			noSecret(t, err)
			if n := b.emu.Calls(emulator.ActivitiesPath); n != 2 {
				t.Errorf("%d calls, want 2 (one retry)", n)
			}
			if n := b.emu.TokensIssued(); n != 2 {
				t.Errorf("%d tokens issued, want 2", n)
			}
		})
	}
}

func TestWrongURLIsConfigError(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)

	wrong := newClient(t, b.emu.URL, b.emu.URL+"/imports", 5*time.Second)
	err := wrong.PutActivity(t.Context(), []byte(validActivity))
	var ce *cgapi.ConfigError
	if !errors.As(err, &ce) || ce.Status != 404 || ce.Method != "PUT" || ce.URL != b.emu.URL+"/imports/activities/" {
		t.Errorf("err = %v, want *ConfigError 404 for PUT %s/imports/activities/", err, b.emu.URL)
	}
	if !cgapi.Retryable(err) || !cgapi.IsOutage(err) {
		t.Errorf("404 is not a retryable outage")
	}

	for _, status := range []int{405, 409, 418} {
		b.emu.FailNext(emulator.SyncPath, status, 1)
		_, err = b.client.SyncResponses(t.Context(), cgapi.SyncQuery{Cursor: "5"})
		if !errors.As(err, &ce) || ce.Status != status || ce.Method != "GET" || strings.Contains(ce.URL, "?") {
			t.Errorf("%d: err = %v, want *ConfigError without query string", status, err)
		}
	}
}

func TestRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)
	var rl *cgapi.RateLimitError

	b.emu.SetRetryAfter(7 * time.Second)
	b.emu.FailNext(emulator.ActivitiesPath, http.StatusTooManyRequests, 1)
	err := b.client.PutActivity(t.Context(), []byte(validActivity))
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second || !cgapi.Retryable(err) || cgapi.IsOutage(err) {
		t.Errorf("seconds: err = %v, want *RateLimitError of 7s", err)
	}

	// An HTTP date has one-second resolution and is relative to now.
	b.emu.SetRetryAfterHTTPDate(true)
	b.emu.FailNext(emulator.ActivitiesPath, http.StatusTooManyRequests, 1)
	err = b.client.PutActivity(t.Context(), []byte(validActivity))
	if !errors.As(err, &rl) || rl.RetryAfter < 5*time.Second || rl.RetryAfter > 8*time.Second {
		t.Errorf("HTTP date: err = %v, want *RateLimitError of about 7s", err)
	}

	b.emu.SetRetryAfter(-1)
	b.emu.FailNext(emulator.ActivitiesPath, http.StatusTooManyRequests, 1)
	err = b.client.PutActivity(t.Context(), []byte(validActivity))
	if !errors.As(err, &rl) || rl.RetryAfter != 0 {
		t.Errorf("no header: err = %v, want *RateLimitError without delay", err)
	}
}

func TestServerErrorsAreTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)
	var te *cgapi.TransientError

	b.emu.FailNext(emulator.ActivitiesPath, http.StatusInternalServerError, 1)
	err := b.client.PutActivity(t.Context(), []byte(validActivity))
	if !errors.As(err, &te) || te.Status != 500 || !cgapi.Retryable(err) || !cgapi.IsOutage(err) {
		t.Errorf("500: err = %v, want a retryable *TransientError 500 that counts as unavailable", err)
	}

	b.emu.SetOutage(true)
	err = b.client.PutRecord(t.Context(), "account", json.RawMessage(`{"Account Name":"ACME"}`))
	if !errors.As(err, &te) || te.Status != 503 || !cgapi.Retryable(err) {
		t.Errorf("outage: err = %v, want a retryable *TransientError 503", err)
	}
	b.emu.SetOutage(false)

	b.emu.SetTokenOutage(true)
	b.emu.ExpireTokens()
	err = b.client.PutActivity(t.Context(), []byte(validActivity))
	var ae *cgapi.AuthError
	if !errors.As(err, &ae) || ae.Status != 503 || !cgapi.Retryable(err) {
		t.Errorf("token outage: err = %v, want a retryable *AuthError 503", err)
	}
	noSecret(t, err)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{Latency: time.Minute}, 200*time.Millisecond)

	err := b.client.PutActivity(t.Context(), []byte(validActivity))
	var te *cgapi.TransientError
	if !errors.As(err, &te) || te.Status != 0 || !errors.Is(err, context.DeadlineExceeded) || !cgapi.Retryable(err) {
		t.Fatalf("err = %v, want a retryable *TransientError timeout", err)
	}
	noSecret(t, err)

	b.emu.SetLatency(0)
	if err := b.client.PutActivity(t.Context(), []byte(validActivity)); err != nil {
		t.Errorf("after the latency went: %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 5*time.Second)
	// The token comes from the emulator, the API call goes nowhere.
	dead := cgapitest.NewServer(t, emulator.Options{})
	deadURL := dead.URL
	_ = dead.Close()
	c := newClient(t, b.emu.URL, deadURL, 5*time.Second)

	err := c.PutActivity(t.Context(), []byte(validActivity))
	var te *cgapi.TransientError
	if !errors.As(err, &te) || te.Status != 0 || !cgapi.Retryable(err) {
		t.Errorf("err = %v, want a retryable *TransientError without status", err)
	}
}

func TestCallerCancels(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{Latency: time.Minute}, 30*time.Second)
	sent := make(chan struct{}, 1)
	cfg := cgapitest.Config(b.emu, emulator.Options{ClientID: "emu-client", ClientSecret: secret})
	cfg.Timeout = 0
	cfg.Transport = sentSignal{base: http.DefaultTransport, path: emulator.ActivitiesPath, sent: sent}
	c, err := cgapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- c.PutActivity(ctx, []byte(validActivity))
	}()
	<-sent // the token is fetched and the PUT on its way; the emulator holds it
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || cgapi.Retryable(err) {
		t.Errorf("err = %v, want context.Canceled, not retryable", err)
	}
	var te *cgapi.TransientError
	if errors.As(err, &te) {
		t.Errorf("a cancellation reported as transient: %v", err)
	}
}

// sentSignal is a transport that says when a request to path goes out.
type sentSignal struct {
	base http.RoundTripper
	path string
	sent chan<- struct{}
}

func (s sentSignal) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == s.path {
		select {
		case s.sent <- struct{}{}:
		default:
		}
	}
	return s.base.RoundTrip(r)
}

// A token endpoint that hangs costs a call its timeout; once it answers
// again, calls work: the fetch never ran under the failed call's context.
func TestHungTokenEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{}, 300*time.Millisecond)
	b.emu.SetTokenHang(true)

	err := b.client.PutActivity(t.Context(), []byte(validActivity))
	if !errors.Is(err, context.DeadlineExceeded) || !cgapi.Retryable(err) {
		t.Fatalf("err = %v, want a retryable timeout", err)
	}
	noSecret(t, err)
	b.emu.SetTokenHang(false)

	// The hung fetch may still be ending (and then fail), so allow a few
	// calls until the deadline rather than trusting the very next one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = b.client.PutActivity(t.Context(), []byte(validActivity))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail after the token endpoint recovered: %v", err)
		}
	}
}

// TestTokenRenewedBeforeExpiry runs calls for longer than a 2-second token
// lives: the client renews it on its own, so the API never sees an expired
// token.
func TestTokenRenewedBeforeExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{TokenTTL: 2 * time.Second}, 5*time.Second)

	deadline := time.Now().Add(15 * time.Second)
	calls := 0
	for b.emu.TokensIssued() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tokens issued after %d calls, want 3", b.emu.TokensIssued(), calls)
		}
		if err := b.client.PutRecord(t.Context(), "account", json.RawMessage(`{"Account Name":"ACME"}`)); err != nil {
			t.Fatal(err)
		}
		calls++
		time.Sleep(10 * time.Millisecond) // pacing the calls while the token ages
	}
	for _, s := range statuses(b.emu, emulator.RecordsPath) {
		if s != 200 {
			t.Fatalf("the API answered %d: a token was used after it expired", s)
		}
	}
}

func TestSyncPaging(t *testing.T) {
	t.Parallel()
	with := []string{"selected_drivers", "tags", "questions", "properties"}
	for _, mode := range []emulator.CursorMode{emulator.CursorNumber, emulator.CursorString} {
		t.Run(fmt.Sprint("mode ", mode), func(t *testing.T) {
			t.Parallel()
			b := setup(t, emulator.Options{Responses: 25}, 5*time.Second)
			b.emu.SetCursorMode(mode)

			var got []json.RawMessage
			q := cgapi.SyncQuery{PerPage: 10, With: with}
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				page, err := b.client.SyncResponses(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Data) == 0 {
					if page.Next != q.Cursor {
						t.Errorf("past the end, cursor moved from %q to %q", q.Cursor, page.Next)
					}
					break
				}
				got = append(got, page.Data...)
				q.Cursor = page.Next
			}
			want := b.emu.Responses(with...)
			if len(got) != len(want) {
				t.Fatalf("got %d responses, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("response %d changed:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
		})
	}

	// With cursor.next null or missing, the page still arrives and Next is
	// empty, which ends a sync pass.
	for _, mode := range []emulator.CursorMode{emulator.CursorNull, emulator.CursorMissing} {
		b := setup(t, emulator.Options{Responses: 3}, 5*time.Second)
		b.emu.SetCursorMode(mode)
		page, err := b.client.SyncResponses(t.Context(), cgapi.SyncQuery{PerPage: 10})
		if err != nil || len(page.Data) != 3 || page.Next != "" {
			t.Errorf("mode %d: %d responses, next %q, err %v; want 3, \"\", nil", mode, len(page.Data), page.Next, err)
		}
	}
}

func TestSyncQueryRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, emulator.Options{Responses: 3}, 5*time.Second)
	_, err := b.client.SyncResponses(t.Context(), cgapi.SyncQuery{PerPage: 1001})
	var de *cgapi.DataError
	if !errors.As(err, &de) || de.Status != 422 || len(de.Errors["per_page"]) == 0 {
		t.Errorf("err = %v, want a 422 on per_page", err)
	}
}

// BenchmarkPutActivityParallel measures PUTs per second through one client
// with 64 callers in flight (CG_CONCURRENCY's default) against the
// emulator without latency: the client's own overhead plus loopback HTTP.
func BenchmarkPutActivityParallel(b *testing.B) {
	emu := cgapitest.NewServer(b, emulator.Options{
		ClientID: "emu-client", ClientSecret: secret, NoRequestLog: true, DiscardBodies: true,
	})
	c := newClient(b, emu.URL, emu.URL, 30*time.Second)
	if err := c.PutActivity(b.Context(), []byte(validActivity)); err != nil {
		b.Fatal(err) // warm the token
	}
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	const inFlight = 64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((inFlight + procs - 1) / procs)
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := make([]byte, 0, 256)
		for pb.Next() {
			body = fmt.Appendf(body[:0], `{"reference":"bench-%d","account":"ACME","type":"Support Ticket","source":"bench","happened_at":"2019-10-06 22:34:45"}`, seq.Add(1))
			if err := c.PutActivity(b.Context(), body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}
