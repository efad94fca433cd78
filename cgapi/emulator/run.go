package emulator

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// shutdownGrace is how long Run lets requests in progress finish.
const shutdownGrace = 5 * time.Second

// Run serves an emulator on addr until ctx is cancelled, then shuts it
// down gracefully. The first line written to out is the base URL,
// http://127.0.0.1:PORT. It is the `cgworker emulator` command.
func Run(ctx context.Context, addr string, opts Options, out io.Writer) error {
	s, err := Listen(addr, opts)
	if err != nil {
		return err
	}
	return s.serveUntil(ctx, out)
}

// serveUntil is Run once s listens: it writes s.URL to out, serves until
// ctx is cancelled, then shuts s down, releasing held requests at once.
func (s *Server) serveUntil(ctx context.Context, out io.Writer) error {
	if _, err := fmt.Fprintln(out, s.URL); err != nil {
		_ = s.Close()
		return fmt.Errorf("emulator: write base URL: %w", err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.shutdown(sctx); err != nil {
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	return nil
}

// defaultCLIResponses is how many responses `cgworker emulator` seeds
// unless told otherwise, so a sync has something to fetch.
const defaultCLIResponses = 100

// RegisterFlags binds the emulator's flags (README, "The emulator") to opts.
// Fields of opts already set are the flags' defaults; the others get the
// emulator's defaults, so a parsed opts is complete.
func RegisterFlags(fs *flag.FlagSet, opts *Options) {
	responses := opts.Responses
	if responses == 0 {
		responses = defaultCLIResponses
	}
	*opts = opts.withDefaults()
	opts.Responses = responses

	fs.StringVar(&opts.ClientID, "client-id", opts.ClientID, "OAuth2 client id the token endpoint accepts")
	fs.Var(&secretFlag{&opts.ClientSecret}, "client-secret", "OAuth2 client `secret` the token endpoint accepts")
	fs.Var(&listFlag{&opts.Configurations}, "configurations",
		"comma-separated `list` of known configuration references; one containing \"account\" (or written REF=account) takes accounts, others contacts")
	fs.Var(&listFlag{&opts.Contacts}, "contacts",
		"comma-separated `list` of known contacts (emails or phones) activities may name")
	fs.DurationVar(&opts.Latency, "latency", opts.Latency, "delay added to every API call")
	fs.Var(&rateFlag{&opts.ErrorRate}, "error-rate", "share of API calls answered with a 5xx, a `rate` from 0 to 1")
	fs.Var(&rateFlag{&opts.RateLimitRate}, "rate-limit-rate", "share of API calls answered 429, a `rate` from 0 to 1")
	fs.IntVar(&opts.RateLimit, "rate-limit", opts.RateLimit, "API calls per one-second window; beyond, 429 as Laravel's throttle answers (0: no limit)")
	fs.DurationVar(&opts.RetryAfter, "retry-after", opts.RetryAfter, "Retry-After of 429 answers (whole seconds)")
	fs.DurationVar(&opts.TokenTTL, "token-ttl", opts.TokenTTL, "lifetime of issued tokens")
	fs.IntVar(&opts.Responses, "responses", opts.Responses, "seeded survey responses")
}

// listFlag is a comma-separated list flag.
type listFlag struct{ p *[]string }

func (f *listFlag) String() string {
	if f == nil || f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f *listFlag) Set(s string) error {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*f.p = append([]string{}, out...) // non-nil: an empty list means none, not the defaults
	return nil
}

// rateFlag is a share between 0 and 1.
type rateFlag struct{ p *float64 }

func (f *rateFlag) String() string {
	if f == nil || f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f *rateFlag) Set(s string) error {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || r > 1 {
		return fmt.Errorf("want a number from 0 to 1")
	}
	*f.p = r
	return nil
}

// secretFlag is a string flag that shows its default in --help only when it
// is the well-known development secret.
type secretFlag struct{ p *string }

func (f *secretFlag) String() string {
	if f == nil || f.p == nil || *f.p != DefaultClientSecret {
		return ""
	}
	return *f.p
}

func (f *secretFlag) Set(s string) error {
	*f.p = s
	return nil
}
