package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// setting is one configuration setting: an environment variable and a flag
// named after it (CG_SYNC_INTERVAL <-> --sync-interval). A flag wins over
// the variable. The README's "Configuration" section is the list.
type setting struct {
	env    string
	def    string
	usage  string
	secret bool // never printed
}

// settings is every setting the binary reads. The deploy drift test checks
// deploy/ against this table.
var settings = []setting{
	{env: "NATS_URL", def: "nats://127.0.0.1:4222", usage: "comma-separated NATS server URLs"},
	{env: "NATS_CREDS", usage: "NATS credentials file"},
	{env: "NATS_NKEY", usage: "NATS nkey seed file"},
	{env: "NATS_USER", usage: "NATS user"},
	{env: "NATS_PASSWORD", usage: "NATS password", secret: true},
	{env: "NATS_TOKEN", usage: "NATS token", secret: true},
	{env: "NATS_TLS_CA", usage: "CA certificate file for TLS to NATS"},
	{env: "NATS_TLS_CERT", usage: "client certificate file for TLS to NATS"},
	{env: "NATS_TLS_KEY", usage: "client key file for TLS to NATS"},
	{env: "CG_REGION", usage: "CustomerGauge region: eu, us or au"},
	{env: "CG_CLIENT_ID", usage: "OAuth2 client id of the Connected App"},
	{env: "CG_CLIENT_SECRET", usage: "OAuth2 client secret (prefer CG_CLIENT_SECRET_FILE)", secret: true},
	{env: "CG_CLIENT_SECRET_FILE", usage: "file holding the OAuth2 client secret"},
	{env: "CG_AUTH_URL", usage: "token URL (default https://auth.{region}.customergauge.com/oauth2/token)"},
	{env: "CG_IMPORTS_URL", usage: "imports API base URL (default https://imports.api.{region}.customergauge.com)"},
	{env: "CG_API_URL", usage: "API base URL (default https://api.{region}.customergauge.com)"},
	{env: "CG_ACCOUNT_CONFIGURATION", usage: "Inbound Mapping reference for accounts; without it accounts are not consumed"},
	{env: "CG_CONTACT_CONFIGURATION", usage: "Inbound Mapping reference for contacts; without it contacts are not consumed"},
	{env: "CG_SUBJECT_PREFIX", def: "cg", usage: "first token of every subject; streams and bucket use its upper-case form"},
	{env: "CG_CONCURRENCY", def: "64", usage: "most PUTs in flight per replica"},
	{env: "CG_ACK_WAIT", def: "30s", usage: "ack wait of the consumers the worker creates"},
	{env: "CG_HTTP_TIMEOUT", def: "30s", usage: "timeout of one API call, token calls included"},
	{env: "CG_RETRY_MAX_ELAPSED", def: "5m", usage: "in-process retry budget of one delivery"},
	{env: "CG_CONTACT_WAIT", def: "2m", usage: "how long an activity failing only on contact is retried"},
	{env: "CG_SHUTDOWN_TIMEOUT", def: "25s", usage: "drain time on SIGTERM/SIGINT"},
	{env: "CG_SYNC_INTERVAL", def: "1h", usage: "responses poll period; 0 disables the sync"},
	{env: "CG_SYNC_WITH", def: "selected_drivers,tags,questions,properties", usage: "with[] expansions of the sync"},
	{env: "CG_SYNC_PER_PAGE", def: "1000", usage: "sync page size, 1..1000"},
	{env: "CG_SYNC_FILTER", usage: "outbound filter reference of the sync"},
	{env: "CG_SCHEMAS_DIR", usage: "folder of JSON Schemas replacing the built-in ones"},
	{env: "CG_HTTP_ADDR", def: ":8080", usage: "address of /healthz, /readyz, /metrics; empty disables; port 0 picks one"},
	{env: "CG_CONSUME", def: "true", usage: "consume events"},
	{env: "CG_SYNC", def: "true", usage: "run the responses sync"},
	{env: "LOG_LEVEL", def: "info", usage: "debug, info, warn or error"},
	{env: "LOG_FORMAT", def: "json", usage: "json or text"},
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

// config is the raw value of every setting a command registered, and the
// typed readers that validate them. Readers record the first error, which
// names the setting; check err once after reading.
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

func (c *config) str(env string) string { return strings.TrimSpace(c.raw(env)) }

func (c *config) required(env string) string {
	v := c.str(env)
	if v == "" {
		c.fail(env, "required")
	}
	return v
}

func (c *config) duration(env string) time.Duration {
	v := c.str(env)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		c.fail(env, "want a duration such as 30s or 5m, got %q", v)
	}
	return d
}

func (c *config) positiveDuration(env string) time.Duration {
	d := c.duration(env)
	if d <= 0 && c.err == nil {
		c.fail(env, "must be greater than 0")
	}
	return d
}

func (c *config) intRange(env string, lo, hi int) int {
	v := c.str(env)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		c.fail(env, "want a whole number from %d to %d, got %q", lo, hi, v)
	}
	return n
}

func (c *config) boolean(env string) bool {
	v := c.str(env)
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.fail(env, "want true or false, got %q", v)
	}
	return b
}

func (c *config) oneOf(env string, allowed ...string) string {
	v := strings.ToLower(c.str(env))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	c.fail(env, "want one of %s, got %q", strings.Join(allowed, ", "), v)
	return v
}

func (c *config) list(env string) []string {
	var out []string
	for _, p := range strings.Split(c.str(env), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *config) addr(env string) string {
	v := c.str(env)
	if v == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		c.fail(env, "want host:port such as :8080, got %q", v)
	}
	return v
}

func (c *config) file(env string) string {
	v := c.str(env)
	if v == "" {
		return ""
	}
	if _, err := os.Stat(v); err != nil {
		c.fail(env, "%v", err)
	}
	return v
}
