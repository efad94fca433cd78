package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/embedded"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/responses"
)

// devDefaults are the settings `dev` changes, unless set, to suit a laptop:
// readable logs, a free port for /metrics, a contact wait short enough to
// watch, and the emulator's configuration references.
var devDefaults = map[string]string{
	"LOG_FORMAT":               "text",
	"LOG_LEVEL":                "warn",
	"CG_HTTP_ADDR":             "127.0.0.1:0",
	"CG_CONTACT_WAIT":          "5s",
	"CG_ACCOUNT_CONFIGURATION": "account",
	"CG_CONTACT_CONFIGURATION": "contact",
}

// devAPI are the API settings of `dev`, whatever the environment says: the
// emulator at url.
func devAPI(url string) map[string]string {
	return map[string]string{
		"CG_REGION": "", "CG_AUTH_URL": url + emulator.TokenPath, "CG_IMPORTS_URL": url, "CG_API_URL": url,
		"CG_CLIENT_ID": "dev", "CG_CLIENT_SECRET": "dev", "CG_CLIENT_SECRET_FILE": "", "CG_HTTP_TIMEOUT": "10s",
	}
}

var devSettings = slices.Concat(workerSettings, syncSettings, logSettings, []string{"CG_SUBJECT_PREFIX", "CG_HTTP_ADDR"})

func devCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("dev", e)
	demo := fs.Bool("demo", false, "publish sample events of every kind, valid and invalid, and print what happened to each")
	store := fs.String("store", "", "JetStream store directory (default: a temp dir, removed on exit)")
	var overrides map[string]string // devAPI, once the emulator listens
	lookup := func(k string) (string, bool) {
		if v, ok := overrides[k]; ok {
			return v, true
		}
		if v, ok := e.lookupEnv(k); ok {
			return v, true
		}
		v, ok := devDefaults[k]
		return v, ok
	}
	c := newConfig(fs, lookup, devSettings...)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := c.logger(e.stderr)
	names := c.names()

	storeDir := *store
	if storeDir == "" {
		dir, err := os.MkdirTemp("", "cgworker-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		storeDir = dir
	}
	ns, err := embedded.Start(embedded.Options{StoreDir: storeDir})
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	defer ns.Shutdown()
	emu, err := emulator.Listen("127.0.0.1:0", emulator.Options{Responses: 25, Configurations: []string{"account", "contact"}})
	if err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(e.stdout, "NATS:     %s (JetStream store %s)\n", ns.URL(), storeDir)
	fmt.Fprintf(e.stdout, "emulator: %s (client id dev, secret dev)\n", emu.URL)

	rc := runConfig{consume: true, syncOn: true}
	rc.nats = queue.ConnConfig{URL: ns.URL(), Name: "cgworker-dev", Logger: log}
	overrides = devAPI(emu.URL)
	rc.api = c.api()
	rc.worker = c.worker(log)
	rc.sync = c.sync(log, names)
	rc.validator = c.validator()
	rc.httpAddr = c.str("CG_HTTP_ADDR")
	if c.err != nil {
		return c.err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var narrator *demoNarrator
	if *demo {
		narrator = newDemoNarrator(e.stdout)
		rc.worker.OnSettled = narrator.settled
	}
	rc.sync.Hooks.OnPass = func(r responses.Result, err error) {
		switch {
		case err != nil:
			fmt.Fprintf(e.stdout, "  sync           failed: %v\n", err)
		case r.Published > 0:
			fmt.Fprintf(e.stdout, "  synced         %d survey responses onto %s (cursor %s)\n", r.Published, names.ResponsesSubject(), r.Cursor)
		}
	}
	rc.ready = func(httpAddr string) {
		if httpAddr != "" {
			fmt.Fprintf(e.stdout, "metrics:  http://%s/metrics (also /healthz, /readyz)\n", httpAddr)
		}
		fmt.Fprintf(e.stdout, "\nPublish your own events with:\n  %s publish activity --nats-url %s < events.ndjson\nInspect dead letters with:\n  %s dlq list --nats-url %s\nPress Ctrl-C to stop.\n\n", bannerCommand, ns.URL(), bannerCommand, ns.URL())
		if narrator != nil {
			go func() {
				if err := narrator.publish(runCtx, ns.URL(), names); err != nil {
					fmt.Fprintf(e.stderr, "demo: %v\n", err)
				}
			}()
		}
	}
	return serve(runCtx, rc, log)
}

// bannerCommand starts each command the banner suggests; a test runs
// those lines as printed.
const bannerCommand = "go run ./cmd/cgworker"

// demoEvent is a sample event and what should become of it.
type demoEvent struct {
	kind    schemas.Kind
	what    string
	body    string
	headers map[string]string
	// want is the error kind it is dead-lettered with, "" when it is
	// delivered.
	want string
}

var demoEvents = []demoEvent{
	{schemas.Activity, "a support ticket for a known contact", `{"account":"ACME Industries","type":"Support Ticket","source":"Freshdesk","contact":"john.doe@example.com","happened_at":"2019-03-06 10:00:00 +0530","additional_information_object":{"subject":"Printer on fire","priority":"high"}}`, nil, ""},
	{schemas.Activity, "an invoice with no reference or happened_at (the worker derives both)", `{"account":"Globex","type":"Invoice","source":"Billing","additional_information_object":{"amount":1234.50,"currency":"EUR"}}`, nil, ""},
	{schemas.Activity, "an activity missing its type", `{"account":"ACME Industries","source":"Zendesk"}`, nil, "schema"},
	{schemas.Activity, "a misspelt field (happend_at)", `{"account":"ACME Industries","type":"Call","source":"Aircall","happend_at":"2024-01-02"}`, nil, "schema"},
	{schemas.Activity, "an impossible date", `{"account":"ACME Industries","type":"Call","source":"Aircall","happened_at":"2019-02-30"}`, nil, "schema"},
	{schemas.Activity, "not JSON at all", `account=ACME&type=Call`, nil, "malformed"},
	{schemas.Activity, "a contact the API does not know (retried for CG_CONTACT_WAIT, then dead-lettered)", `{"account":"Initech","type":"Meeting","source":"Salesforce","contact":"nobody@example.com"}`, nil, "api-422"},
	{schemas.Account, "an account", `{"Account Name":"ACME Industries","Industry":"Manufacturing","Employees":1200}`, nil, ""},
	{schemas.Account, "an account without its name", `{"Industry":"Retail"}`, nil, "schema"},
	{schemas.Contact, "a contact", `{"Email":"jane.roe@example.com","First Name":"Jane","Account Name":"ACME Industries"}`, nil, ""},
	{schemas.Contact, "a contact with a broken email", `{"Email":"jane.roe@","First Name":"Jane"}`, nil, "schema"},
	{schemas.Contact, "a contact for a mapping the API does not know (CG-Configuration header)", `{"Email":"joe@example.com"}`, map[string]string{queue.HeaderConfiguration: "no-such-mapping"}, "api-422"},
}

// demoNarrator publishes the demo events and prints what became of each.
type demoNarrator struct {
	out io.Writer

	mu      sync.Mutex
	bySeq   map[uint64]demoEvent
	early   map[uint64]worker.Settled // settled before its publish ack was read
	pending int
}

func newDemoNarrator(out io.Writer) *demoNarrator {
	return &demoNarrator{out: out, bySeq: map[uint64]demoEvent{}, early: map[uint64]worker.Settled{}}
}

func (d *demoNarrator) publish(ctx context.Context, url string, names queue.Names) error {
	nc, err := nats.Connect(url, nats.Name("cgworker-demo"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Publishing %d sample events...\n", len(demoEvents))
	d.mu.Lock()
	d.pending = len(demoEvents)
	d.mu.Unlock()
	for _, ev := range demoEvents {
		msg := nats.NewMsg(names.EventSubject(ev.kind))
		msg.Data = []byte(ev.body)
		for k, v := range ev.headers {
			msg.Header.Set(k, v)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := js.PublishMsg(pctx, msg)
		cancel()
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.bySeq[ack.Sequence] = ev
		if s, ok := d.early[ack.Sequence]; ok {
			delete(d.early, ack.Sequence)
			d.print(ev, s)
		}
		d.mu.Unlock()
	}
	return nil
}

func (d *demoNarrator) settled(s worker.Settled) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ev, ok := d.bySeq[s.Seq]
	if !ok {
		d.early[s.Seq] = s
		return
	}
	d.print(ev, s)
}

// print reports one settled demo event; d.mu is held.
func (d *demoNarrator) print(ev demoEvent, s worker.Settled) {
	switch s.Action {
	case worker.Ack:
		fmt.Fprintf(d.out, "  delivered      %-8s %s\n", ev.kind, ev.what)
	case worker.DeadLetter:
		fmt.Fprintf(d.out, "  dead-lettered  %-8s %s\n                 [%s] %s\n", ev.kind, ev.what, s.ErrorKind, s.Error)
	default:
		fmt.Fprintf(d.out, "  %-14s %-8s %s\n", s.Action, ev.kind, ev.what)
		return // not final: it comes back
	}
	d.pending--
	if d.pending == 0 {
		fmt.Fprintf(d.out, "\nAll %d sample events settled. The worker keeps running; Ctrl-C stops it.\n", len(demoEvents))
	}
}
