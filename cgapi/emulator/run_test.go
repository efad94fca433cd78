package emulator

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, "127.0.0.1:0", Options{ClientID: "id", ClientSecret: "secret"}, pw)
		pw.Close()
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(line)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(base) {
		t.Fatalf("first line %q, want http://127.0.0.1:PORT", line)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // drain any further output

	resp, err := http.PostForm(base+TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := readResponse(t, resp); status != http.StatusOK {
		t.Fatalf("token: HTTP %d %s", status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(base + SyncPath); err == nil {
		t.Error("still serving after Run returned")
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), "127.0.0.1:0", Options{ErrorRate: 2}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--error-rate") {
		t.Fatalf("err = %v, want one naming --error-rate", err)
	}
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	var opts Options
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs, &opts)
	err := fs.Parse([]string{
		"--client-id", "cid", "--configurations", "acct-ref=account, contact-ref",
		"--latency", "5ms", "--error-rate", "0.1", "--rate-limit-rate", "0.2",
		"--retry-after", "2s", "--token-ttl", "2s", "--responses", "7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.ClientID != "cid" || opts.ClientSecret != "dev" || !slices.Equal(opts.Configurations, []string{"acct-ref=account", "contact-ref"}) ||
		!slices.Equal(opts.Contacts, DefaultContacts) || opts.Latency != 5*time.Millisecond || opts.ErrorRate != 0.1 ||
		opts.RateLimitRate != 0.2 || opts.RetryAfter != 2*time.Second || opts.TokenTTL != 2*time.Second || opts.Responses != 7 {
		t.Errorf("parsed %+v", opts)
	}

	// Defaults, as --help lists them.
	var defaults Options
	fs = flag.NewFlagSet("emulator", flag.ContinueOnError)
	RegisterFlags(fs, &defaults)
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, want := range append([]string{"account,contact", "1h0m0s", "--responses", "(default 100)"}, DefaultContacts...) {
		want = strings.TrimPrefix(want, "-")
		if !strings.Contains(help.String(), want) {
			t.Errorf("help does not mention %q:\n%s", want, help.String())
		}
	}
	if defaults.TokenTTL != time.Hour || defaults.RetryAfter != time.Second || defaults.Responses != 100 {
		t.Errorf("defaults %+v", defaults)
	}

	for _, bad := range [][]string{{"--error-rate", "1.5"}, {"--rate-limit-rate", "x"}} {
		fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		RegisterFlags(fs, &Options{})
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The configured reference types reach the emulator: "acct-ref=account"
// takes accounts although its name does not say so.
func TestConfigurationTypes(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Configurations: []string{"acct-ref=account", "contact-ref"}})
	if status, body := f.putRecord(recordBody(t, "acct-ref", map[string]any{"Account Name": "ACME"})); status != 200 {
		t.Errorf("account configuration: HTTP %d %s", status, body)
	}
	if status, _ := f.putRecord(recordBody(t, "contact-ref", map[string]any{"Account Name": "ACME"})); status != 422 {
		t.Errorf("contact configuration took an account record: HTTP %d", status)
	}
}

// Stopping Run while the emulator holds a request (here a latency of an
// hour) releases it with the emulator's 503 at once, rather than waiting
// out shutdownGrace: Run's nil error says the shutdown finished within it.
func TestRunReleasesHeldRequests(t *testing.T) {
	t.Parallel()
	s, err := Listen("127.0.0.1:0", Options{ClientID: "id", ClientSecret: "secret", Latency: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.serveUntil(ctx, io.Discard) }()

	resp, err := http.PostForm(s.URL+TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	status, body := readResponse(t, resp)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	mustUnmarshal(t, body, &tok)
	if status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token: HTTP %d %s", status, body)
	}

	type reply struct {
		status int
		body   []byte
		err    error
	}
	answered := make(chan reply, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPut, s.URL+ActivitiesPath, strings.NewReader(`{"account":"ACME","type":"T","source":"S"}`))
		if err != nil {
			answered <- reply{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- reply{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- reply{resp.StatusCode, b, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Holding() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the PUT never reached the emulator")
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	a := <-answered
	if a.err != nil || a.status != http.StatusServiceUnavailable || messageOf(t, a.body) != "Service Unavailable" {
		t.Errorf("held PUT: HTTP %d %s (%v), want the emulator's 503", a.status, a.body, a.err)
	}
	if n := s.ActivityCount(); n != 0 {
		t.Errorf("%d activities stored by a released request, want 0", n)
	}
}
