package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/telemetry"
)

func (c *config) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.str("LOG_LEVEL") {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.str("LOG_FORMAT") == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(telemetry.LogHandler(h))
}

func (c *config) names() queue.Names {
	return queue.NewNames(c.str("CG_SUBJECT_PREFIX"))
}

func (c *config) nats(log *slog.Logger) queue.ConnConfig {
	cc := queue.ConnConfig{
		URL:      c.str("NATS_URL"),
		Name:     "cgworker",
		Creds:    c.str("NATS_CREDS"),
		NKey:     c.str("NATS_NKEY"),
		User:     c.str("NATS_USER"),
		Password: c.str("NATS_PASSWORD"),
		Token:    c.str("NATS_TOKEN"),
		TLSCA:    c.str("NATS_TLS_CA"),
		TLSCert:  c.str("NATS_TLS_CERT"),
		TLSKey:   c.str("NATS_TLS_KEY"),
		Logger:   log,
	}
	if (cc.TLSCert == "") != (cc.TLSKey == "") {
		c.fail("NATS_TLS_KEY", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	if cc.Password != "" && cc.User == "" {
		c.fail("NATS_USER", "required with NATS_PASSWORD")
	}
	return cc
}

// api reads the API settings: the region gives the three URLs, which the
// URL settings override.
func (c *config) api() cgapi.Config {
	cfg := cgapi.Config{
		AuthURL:    c.str("CG_AUTH_URL"),
		ImportsURL: c.str("CG_IMPORTS_URL"),
		APIURL:     c.str("CG_API_URL"),
		ClientID:   c.str("CG_CLIENT_ID"),
		Timeout:    c.duration("CG_HTTP_TIMEOUT"),
		UserAgent:  userAgent(),
	}
	if region := c.str("CG_REGION"); region != "" {
		auth, imports, api, err := cgapi.URLsForRegion(region)
		if err != nil {
			c.fail("CG_REGION", "want eu, us or au, got %q", region)
		}
		cfg.AuthURL = cmp.Or(cfg.AuthURL, auth)
		cfg.ImportsURL = cmp.Or(cfg.ImportsURL, imports)
		cfg.APIURL = cmp.Or(cfg.APIURL, api)
	} else if cfg.AuthURL == "" || cfg.ImportsURL == "" || cfg.APIURL == "" {
		c.fail("CG_REGION", "required unless CG_AUTH_URL, CG_IMPORTS_URL and CG_API_URL are all set")
	}
	secret := c.str("CG_CLIENT_SECRET")
	if file := c.str("CG_CLIENT_SECRET_FILE"); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			c.fail("CG_CLIENT_SECRET_FILE", "%v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	cfg.ClientSecret = secret
	// The URLs, the credentials and the timeout, checked where the client
	// checks them.
	if err := cfg.Validate(); err != nil {
		var se *cgapi.SettingError
		if errors.As(err, &se) {
			c.fail(se.Setting, "%s", se.Problem)
		} else {
			c.invalid(err)
		}
	}
	return cfg
}

func (c *config) validator() *schemas.Validator {
	v, err := schemas.New(c.str("CG_SCHEMAS_DIR"))
	if err != nil {
		c.fail("CG_SCHEMAS_DIR", "%v", err)
	}
	return v
}

// worker reads the pipeline settings. Record kinds without a configuration
// reference are left out, with a warning.
func (c *config) worker(log *slog.Logger) worker.Config {
	cfg := worker.Config{
		Names:                c.names(),
		AccountConfiguration: c.str("CG_ACCOUNT_CONFIGURATION"),
		ContactConfiguration: c.str("CG_CONTACT_CONFIGURATION"),
		Concurrency:          c.integer("CG_CONCURRENCY"),
		RateLimit:            float64(c.integer("CG_RATE_LIMIT")),
		AckWait:              c.duration("CG_ACK_WAIT"),
		RetryMaxElapsed:      c.duration("CG_RETRY_MAX_ELAPSED"),
		ContactWait:          c.duration("CG_CONTACT_WAIT"),
		ShutdownTimeout:      c.duration("CG_SHUTDOWN_TIMEOUT"),
		Logger:               log,
	}
	cfg.Kinds = []schemas.Kind{schemas.Activity}
	if cfg.AccountConfiguration != "" {
		cfg.Kinds = append(cfg.Kinds, schemas.Account)
	} else {
		log.Warn("CG_ACCOUNT_CONFIGURATION is not set: account events are not consumed and wait in the stream")
	}
	if cfg.ContactConfiguration != "" {
		cfg.Kinds = append(cfg.Kinds, schemas.Contact)
	} else {
		log.Warn("CG_CONTACT_CONFIGURATION is not set: contact events are not consumed and wait in the stream")
	}
	return cfg
}

// connectJS connects to NATS for a one-shot command and returns its
// JetStream context, made with opts, and the function that closes the
// connection.
func connectJS(ctx context.Context, cfg queue.ConnConfig, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, func(), error) {
	nc, err := queue.Connect(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}
