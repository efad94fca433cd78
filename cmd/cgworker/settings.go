package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/responses"
)

// setting is one configuration setting: an environment variable and a flag
// named after it (CG_SYNC_INTERVAL <-> --sync-interval). A flag wins over
// the variable. The README's "Configuration" section is the list.
type setting struct {
	env    string
	group  group  // which commands read it
	def    string // shown in the help; a package's Default constant where the package has one
	usage  string
	secret bool // never printed, and read untrimmed
	// parse checks the text and turns it into the value the readers use:
	// a string, []string, int, bool or time.Duration. Its error says what
	// is wrong, without the setting's name, which is added where it is
	// reported.
	parse func(string) (any, error)
}

// group is a set of settings read together, by what a command needs.
type group int

const (
	natsGroup   group = iota + 1 // every command that talks to NATS
	apiGroup                     // the API client
	workerGroup                  // the pipeline
	syncGroup                    // the responses sync
	logGroup                     // logging
	runGroup                     // `run` alone
)

// settings is every setting the binary reads: its name, group, default,
// help and parser, once. The deploy drift test checks deploy/ against this
// table.
var settings = []setting{
	{env: "NATS_URL", group: natsGroup, def: queue.DefaultURL, usage: "comma-separated NATS server URLs", parse: natsURLs},
	{env: "NATS_CREDS", group: natsGroup, usage: "NATS credentials file", parse: existingFile},
	{env: "NATS_NKEY", group: natsGroup, usage: "NATS nkey seed file", parse: existingFile},
	{env: "NATS_USER", group: natsGroup, usage: "NATS user", parse: text},
	{env: "NATS_PASSWORD", group: natsGroup, usage: "NATS password", secret: true, parse: text},
	{env: "NATS_TOKEN", group: natsGroup, usage: "NATS token", secret: true, parse: text},
	{env: "NATS_TLS_CA", group: natsGroup, usage: "CA certificate file for TLS to NATS", parse: existingFile},
	{env: "NATS_TLS_CERT", group: natsGroup, usage: "client certificate file for TLS to NATS", parse: existingFile},
	{env: "NATS_TLS_KEY", group: natsGroup, usage: "client key file for TLS to NATS", parse: existingFile},
	{env: "CG_SUBJECT_PREFIX", group: natsGroup, def: queue.NewNames("").Prefix, usage: "first token of every subject; streams and bucket use its upper-case form", parse: subjectToken},
	{env: "CG_REGION", group: apiGroup, usage: "CustomerGauge region: eu, us or au", parse: text},
	{env: "CG_CLIENT_ID", group: apiGroup, usage: "OAuth2 client id of the Connected App", parse: text},
	{env: "CG_CLIENT_SECRET", group: apiGroup, usage: "OAuth2 client secret (prefer CG_CLIENT_SECRET_FILE)", secret: true, parse: text},
	{env: "CG_CLIENT_SECRET_FILE", group: apiGroup, usage: "file holding the OAuth2 client secret", parse: text},
	{env: "CG_AUTH_URL", group: apiGroup, usage: "token URL (default https://auth.{region}.customergauge.com/oauth2/token)", parse: text},
	{env: "CG_IMPORTS_URL", group: apiGroup, usage: "imports API base URL (default https://imports.api.{region}.customergauge.com)", parse: text},
	{env: "CG_API_URL", group: apiGroup, usage: "API base URL (default https://api.{region}.customergauge.com)", parse: text},
	{env: "CG_HTTP_TIMEOUT", group: apiGroup, def: formatDuration(cgapi.DefaultTimeout), usage: "timeout of one API call, token calls included", parse: positiveDuration},
	{env: "CG_ACCOUNT_CONFIGURATION", group: workerGroup, usage: "Inbound Mapping reference for accounts; without it accounts are not consumed", parse: text},
	{env: "CG_CONTACT_CONFIGURATION", group: workerGroup, usage: "Inbound Mapping reference for contacts; without it contacts are not consumed", parse: text},
	{env: "CG_CONCURRENCY", group: workerGroup, def: strconv.Itoa(worker.DefaultConcurrency), usage: "most PUTs in flight per replica", parse: wholeNumber(1, 100000)},
	{env: "CG_RATE_LIMIT", group: workerGroup, def: "0", usage: "most API calls per second per replica; 0 = no fixed limit", parse: wholeNumber(0, 1000000)},
	{env: "CG_ACK_WAIT", group: workerGroup, def: formatDuration(queue.DefaultAckWait), usage: "ack wait of the consumers the worker creates", parse: positiveDuration},
	{env: "CG_RETRY_MAX_ELAPSED", group: workerGroup, def: formatDuration(worker.DefaultRetryMaxElapsed), usage: "in-process retry budget of one delivery", parse: positiveDuration},
	{env: "CG_CONTACT_WAIT", group: workerGroup, def: formatDuration(worker.DefaultContactWait), usage: "how long an activity failing only on contact is retried", parse: positiveDuration},
	{env: "CG_SHUTDOWN_TIMEOUT", group: workerGroup, def: formatDuration(worker.DefaultShutdownTimeout), usage: "drain time on SIGTERM/SIGINT", parse: positiveDuration},
	{env: "CG_SCHEMAS_DIR", group: workerGroup, usage: "folder of JSON Schemas replacing the built-in ones", parse: text},
	{env: "CG_SYNC_INTERVAL", group: syncGroup, def: formatDuration(responses.DefaultInterval), usage: "responses poll period; 0 disables the sync", parse: duration},
	{env: "CG_SYNC_WITH", group: syncGroup, def: "selected_drivers,tags,questions,properties", usage: "with[] expansions of the sync", parse: list},
	{env: "CG_SYNC_PER_PAGE", group: syncGroup, def: strconv.Itoa(responses.DefaultPerPage), usage: "sync page size, 1..1000", parse: wholeNumber(1, 1000)},
	{env: "CG_SYNC_FILTER", group: syncGroup, usage: "outbound filter reference of the sync", parse: text},
	{env: "CG_HTTP_ADDR", group: runGroup, def: ":8080", usage: "address of /healthz, /readyz, /metrics; empty disables; port 0 picks one", parse: hostPort},
	{env: "CG_CONSUME", group: runGroup, def: "true", usage: "consume events", parse: boolean},
	{env: "CG_SYNC", group: runGroup, def: "true", usage: "run the responses sync", parse: boolean},
	{env: "LOG_LEVEL", group: logGroup, def: "info", usage: "debug, info, warn or error", parse: oneOf("debug", "info", "warn", "error")},
	{env: "LOG_FORMAT", group: logGroup, def: "json", usage: "json or text", parse: oneOf("json", "text")},
}

// The settings of each group, for the commands to register.
var (
	natsSettings   = settingsIn(natsGroup)
	apiSettings    = settingsIn(apiGroup)
	workerSettings = settingsIn(workerGroup)
	syncSettings   = settingsIn(syncGroup)
	logSettings    = settingsIn(logGroup)
)

func settingsIn(g group) []string {
	var out []string
	for _, s := range settings {
		if s.group == g {
			out = append(out, s.env)
		}
	}
	return out
}

// flagName is the flag of an environment variable: CG_SYNC_INTERVAL ->
// sync-interval, NATS_URL -> nats-url.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "CG_")), "_", "-")
}

func lookupSetting(env string) setting {
	for _, s := range settings {
		if s.env == env {
			return s
		}
	}
	panic("unknown setting " + env)
}

// formatDuration writes a default the way the README does: 5m, not 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// config is the raw value of every setting a command registered, and the
// typed readers that return their parsed values. Readers record the first
// error, which names the setting; check err once after reading.
type config struct {
	flags     map[string]*settingFlag
	lookupEnv func(string) (string, bool)
	err       error
}

// newConfig registers the flags of the settings named by envs on fs.
func newConfig(fs *flag.FlagSet, lookupEnv func(string) (string, bool), envs ...string) *config {
	c := &config{flags: map[string]*settingFlag{}, lookupEnv: lookupEnv}
	for _, env := range envs {
		s := lookupSetting(env)
		def := "$" + env
		if s.def != "" {
			def += " or " + s.def
		}
		f := &settingFlag{boolean: s.def == "true" || s.def == "false"}
		fs.Var(f, flagName(env), s.usage+" (default "+def+")")
		c.flags[env] = f
	}
	return c
}

// settingFlag is the flag of a setting: it remembers whether it was given,
// so the variable and the default apply only when it was not. A boolean
// setting's flag may be given alone (--consume), the value is checked where
// it is read.
type settingFlag struct {
	value   string
	set     bool
	boolean bool
}

func (f *settingFlag) String() string     { return f.value }
func (f *settingFlag) Set(v string) error { f.value, f.set = v, true; return nil }
func (f *settingFlag) IsBoolFlag() bool   { return f.boolean }

// raw is the flag when given, else the variable when set (even to ""),
// else the default.
func (c *config) raw(env string) string {
	if f, ok := c.flags[env]; ok && f.set {
		return f.value
	}
	if v, ok := c.lookupEnv(env); ok {
		return v
	}
	return lookupSetting(env).def
}

// value is the setting's parsed value, or nil after recording its error.
// Secrets are parsed as given; everything else without surrounding space.
func (c *config) value(env string) any {
	s := lookupSetting(env)
	v := c.raw(env)
	if !s.secret {
		v = strings.TrimSpace(v)
	}
	out, err := s.parse(v)
	if err != nil {
		c.fail(env, "%v", err)
		return nil
	}
	return out
}

// get is the parsed value of env as a T; the zero T after an error.
func get[T any](c *config, env string) T {
	v, _ := c.value(env).(T)
	return v
}

func (c *config) str(env string) string             { return get[string](c, env) }
func (c *config) list(env string) []string          { return get[[]string](c, env) }
func (c *config) integer(env string) int            { return get[int](c, env) }
func (c *config) boolean(env string) bool           { return get[bool](c, env) }
func (c *config) duration(env string) time.Duration { return get[time.Duration](c, env) }

func (c *config) fail(env, format string, args ...any) {
	if c.err == nil {
		c.err = &settingError{env: env, msg: fmt.Sprintf(format, args...)}
	}
}

// settingError is a bad or missing setting: exit 2 with one line naming it.
type settingError struct{ env, msg string }

func (e *settingError) Error() string {
	if e.env == "" {
		return e.msg
	}
	return e.env + " (--" + flagName(e.env) + "): " + e.msg
}

// invalid records an error that already names its setting.
func (c *config) invalid(err error) {
	if c.err == nil && err != nil {
		c.err = &settingError{msg: err.Error()}
	}
}

func isSettingError(err error) bool {
	var se *settingError
	return errors.As(err, &se)
}

// The parsers of the table.

func text(v string) (any, error) { return v, nil }

func duration(v string) (any, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("want a duration such as 30s or 5m, got %q", v)
	}
	return d, nil
}

func positiveDuration(v string) (any, error) {
	d, err := duration(v)
	if err == nil && d.(time.Duration) == 0 {
		return nil, errors.New("must be greater than 0")
	}
	return d, err
}

func wholeNumber(lo, hi int) func(string) (any, error) {
	return func(v string) (any, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
		}
		return n, nil
	}
}

func boolean(v string) (any, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("want true or false, got %q", v)
	}
	return b, nil
}

func oneOf(allowed ...string) func(string) (any, error) {
	return func(v string) (any, error) {
		v = strings.ToLower(v)
		if slices.Contains(allowed, v) {
			return v, nil
		}
		return nil, fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func list(v string) (any, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func hostPort(v string) (any, error) {
	if v == "" {
		return v, nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return nil, fmt.Errorf("want host:port such as :8080, got %q", v)
	}
	return v, nil
}

func existingFile(v string) (any, error) {
	if v == "" {
		return v, nil
	}
	if _, err := os.Stat(v); err != nil {
		return nil, err
	}
	return v, nil
}

func natsURLs(v string) (any, error) {
	if v == "" {
		return nil, errors.New("required")
	}
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") && !strings.Contains(u, ":") {
			return nil, fmt.Errorf("want URLs such as nats://host:4222, got %q", u)
		}
	}
	return v, nil
}

func subjectToken(v string) (any, error) {
	if v == "" || strings.ContainsAny(v, ".*> \t") {
		return nil, fmt.Errorf("want one subject token such as cg, got %q", v)
	}
	return v, nil
}
