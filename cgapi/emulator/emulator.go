package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths the emulator serves, as the real service spells them. Each is also
// accepted without (or, for the token and sync paths, with) a trailing slash.
const (
	TokenPath      = "/oauth2/token"
	ActivitiesPath = "/activities/"
	RecordsPath    = "/records/"
	SyncPath       = "/v7/rest/sync/responses"
)

// Options configure the emulator. Zero values give the defaults.
type Options struct {
	ClientID       string        // default "dev"
	ClientSecret   string        // default "dev"
	Configurations []string      // known configuration references; default account, contact
	Contacts       []string      // known contacts (emails/phones); default DefaultContacts
	Latency        time.Duration // added to every API call (not the token call)
	ErrorRate      float64       // share of API calls answered 5xx
	RateLimitRate  float64       // share of API calls answered 429
	RateLimit      int           // API calls per one-second window, answered like Laravel's throttle; 0 none
	RetryAfter     time.Duration // Retry-After of those 429s (whole seconds); default 1s, negative omits the header
	TokenTTL       time.Duration // token lifetime; default 1h
	Responses      int           // seeded survey responses

	// RetryAfterHTTPDate sends Retry-After as an HTTP date instead of seconds.
	RetryAfterHTTPDate bool
	// NoRequestLog turns the request log off (Requests returns nothing);
	// Calls still counts. For benchmarks.
	NoRequestLog bool
	// RequestLogSize is how many requests the log keeps; default 10,000.
	RequestLogSize int
	// DiscardBodies stores activities and records without their bodies, so
	// memory stays small under long benchmark runs.
	DiscardBodies bool
}

// DefaultContacts are the contacts the emulator knows unless told otherwise.
var DefaultContacts = []string{"john.doe@example.com", "jane.roe@example.com", "+31 20 123 4567"}

// DefaultConfigurations are the configuration references the emulator knows
// unless told otherwise: the vendor's default "contact" and an "account".
var DefaultConfigurations = []string{"account", "contact"}

const (
	DefaultClientID       = "dev"
	DefaultClientSecret   = "dev"
	defaultTokenTTL       = time.Hour
	defaultRetryAfter     = time.Second
	defaultRequestLogSize = 10_000
)

func (o Options) withDefaults() Options {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Configurations == nil {
		o.Configurations = DefaultConfigurations
	}
	if o.Contacts == nil {
		o.Contacts = DefaultContacts
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = defaultTokenTTL
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = defaultRetryAfter
	}
	if o.RequestLogSize <= 0 {
		o.RequestLogSize = defaultRequestLogSize
	}
	return o
}

// Validate reports options that make no sense, naming the setting as the
// emulator command's flag.
func (o Options) Validate() error {
	switch {
	case o.Latency < 0:
		return errors.New("--latency must not be negative")
	case o.ErrorRate < 0 || o.ErrorRate > 1:
		return errors.New("--error-rate must be between 0 and 1")
	case o.RateLimitRate < 0 || o.RateLimitRate > 1:
		return errors.New("--rate-limit-rate must be between 0 and 1")
	case o.ErrorRate+o.RateLimitRate > 1:
		return errors.New("--error-rate plus --rate-limit-rate must not exceed 1")
	case o.TokenTTL < 0:
		return errors.New("--token-ttl must not be negative")
	case o.Responses < 0:
		return errors.New("--responses must not be negative")
	case o.RateLimit < 0:
		return errors.New("--rate-limit must not be negative")
	}
	return nil
}

// Activity is an activity as stored by the emulator.
type Activity struct {
	ID        int64
	Reference string          // "" when it was created without one
	Body      json.RawMessage // the last body received for this reference; nil with Options.DiscardBodies
	Puts      int             // how many PUTs created or updated it

	Account    string
	Contact    string    // "" when none was given
	Type       string    // the classification
	Source     string    //
	HappenedAt time.Time // as the API understood happened_at (UTC); the time of the PUT when absent
}

// Request is one request the emulator received. Authorization headers are
// redacted and token request bodies are not kept (they carry the secret).
type Request struct {
	Method   string
	Path     string
	Query    string // raw query string
	Header   http.Header
	Body     []byte // at most the first 8 KiB
	BodySize int    // bytes of body read
	Status   int
	Time     time.Time // when the request arrived
}

// Emulator is the http.Handler serving the API's paths. Safe for
// concurrent use.
type Emulator struct {
	opts Options

	auth      tokens
	faults    faults
	throttle  throttle
	acts      activityStore
	recs      recordStore
	contacts  contactBook
	responses responseStore
	log       requestLog

	cursorMode atomic.Int32 // CursorMode of sync pages
	holding    atomic.Int64 // requests held by latency waits and token hangs

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends hangs and latency waits
}

// New returns an emulator. Out-of-range options are clamped; use
// Options.Validate to report them.
func New(opts Options) *Emulator {
	opts = opts.withDefaults()
	e := &Emulator{opts: opts, closed: make(chan struct{})}
	e.auth.init(opts)
	e.faults.init(opts)
	e.throttle.limit.Store(int64(max(opts.RateLimit, 0)))
	e.acts.init()
	e.recs.init(opts.Configurations)
	e.contacts.init(opts.Contacts)
	e.responses.init(opts.Responses)
	e.log.init(opts)
	return e
}

// Close ends every request the emulator is holding (token hangs, latency
// waits) with an error status. The emulator still serves afterwards, without
// holding requests.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() { close(e.closed) })
}

type route int

const (
	routeUnknown route = iota
	routeToken
	routeActivities
	routeRecords
	routeSync
)

// routeOf maps a request path to a route, ignoring one trailing slash.
func routeOf(path string) route {
	switch normalizePath(path) {
	case "/oauth2/token":
		return routeToken
	case "/activities":
		return routeActivities
	case "/records":
		return routeRecords
	case "/v7/rest/sync/responses":
		return routeSync
	}
	return routeUnknown
}

func normalizePath(path string) string {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	return path
}

var methodOf = [...]string{
	routeToken:      http.MethodPost,
	routeActivities: http.MethodPut,
	routeRecords:    http.MethodPut,
	routeSync:       http.MethodGet,
}

// call is one exchange in progress: handlers answer through it so the
// status and the request body end up in the request log.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	rt     route
	status int
	body   []byte // request body as read
}

func (c *call) raw(status int, contentType string, body []byte) {
	c.status = status
	h := c.w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if body == nil {
		h.Set("Content-Length", "0")
	}
	c.w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = c.w.Write(body)
	}
}

func (c *call) json(status int, body []byte) { c.raw(status, "application/json", body) }

// message answers {"message": msg}, the API's shape for everything but 422.
func (c *call) message(status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	c.json(status, b)
}

// ServeHTTP serves the token endpoint and the API's paths; any other path
// is a 404 {"message":"Not Found"}.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, rt: routeOf(r.URL.Path)}
	arrived := time.Now()
	defer func() {
		if c.status == 0 {
			// The handler gave up (client gone or emulator closed) without
			// answering; say so rather than an implicit 200.
			c.message(http.StatusServiceUnavailable, "Service Unavailable")
		}
		e.log.add(c, arrived)
	}()
	switch c.rt {
	case routeUnknown:
		c.message(http.StatusNotFound, "Not Found")
	case routeToken:
		e.serveToken(c)
	default:
		e.serveAPI(c)
	}
}

// serveAPI runs the fault pipeline shared by every API path, then the
// path's handler. Order: latency, scripted failures, outage, method,
// authentication, probabilistic failures.
func (e *Emulator) serveAPI(c *call) {
	if d := e.faults.latency(); d > 0 && !e.wait(c.r.Context(), d) {
		return
	}
	if s, ok := e.faults.scripted(c.rt, c.r.URL.Path); ok {
		e.answerScripted(c, s)
		return
	}
	if e.faults.outage.Load() {
		c.message(http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	if c.r.Method != methodOf[c.rt] {
		c.w.Header().Set("Allow", methodOf[c.rt])
		c.message(http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	if !e.auth.authenticated(c.r) {
		c.w.Header().Set("WWW-Authenticate", "Bearer")
		c.message(http.StatusUnauthorized, "Unauthenticated.")
		return
	}
	if !e.throttle.take(c.w.Header(), time.Now()) {
		c.message(http.StatusTooManyRequests, "Too Many Attempts.")
		return
	}
	if status, ok := e.faults.random(); ok {
		e.answerFault(c, status, nil)
		return
	}
	switch c.rt {
	case routeActivities:
		e.putActivity(c)
	case routeRecords:
		e.putRecord(c)
	case routeSync:
		e.syncResponses(c)
	}
}

// wait sleeps for d unless the request or the emulator ends first; it
// reports whether the full time passed.
func (e *Emulator) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	e.holding.Add(1)
	defer e.holding.Add(-1)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-e.closed:
	}
	return false
}

// Holding counts the requests the emulator is holding right now (latency
// waits, token hangs), so a test can act once its request has arrived.
func (e *Emulator) Holding() int { return int(e.holding.Load()) }

// Server is an emulator listening on loopback.
type Server struct {
	*Emulator
	URL string // http://127.0.0.1:PORT, the base of every URL

	srv    *http.Server
	served chan struct{}
}

// Listen starts an emulator on addr ("127.0.0.1:0" picks a free port).
// Close stops it. Tests use cgapitest.NewServer, which closes it when
// the test ends.
func Listen(addr string, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	s := &Server{
		Emulator: New(opts),
		URL:      baseURL(ln.Addr().(*net.TCPAddr)),
		served:   make(chan struct{}),
	}
	s.srv = &http.Server{Handler: s.Emulator, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // always ErrServerClosed or a listener error after Close
	}()
	return s, nil
}

// baseURL names a listening address the way a client on this machine
// reaches it: an unspecified host (":0") becomes 127.0.0.1.
func baseURL(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP == nil || a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

// Close stops the server at once, ending the requests it is holding.
func (s *Server) Close() error {
	s.Emulator.Close()
	err := s.srv.Close()
	<-s.served
	return err
}

// shutdown stops the server gracefully: requests in progress may finish
// (held ones are released first) until ctx ends, then it closes.
func (s *Server) shutdown(ctx context.Context) error {
	s.Emulator.Close()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.served
	return err
}
