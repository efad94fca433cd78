package deploy

import (
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/proctest"
)

// scrapeBusyWorker runs `cgworker run` against an embedded NATS server and
// the emulator, feeds it events that are delivered, dead-lettered and
// retried (an activity whose contact the API does not know is retried for
// CG_CONTACT_WAIT, then dead-lettered: a retry without random faults), waits
// for its sync to pass once, and returns its /metrics text.
const validActivity = `{"account":"ACME","type":"purchase","source":"webshop","contact":"john.doe@example.com"}`

func scrapeBusyWorker(t *testing.T) string {
	t.Helper()
	srv := natstest.NewServer(t)
	opts := emulator.Options{Responses: 5}
	api := cgapitest.NewServer(t, opts)
	conf := cgapitest.Config(api, opts)
	bin := facts(t).bin
	p := proctest.Start(t, "worker", bin, map[string]string{
		"NATS_URL":                 srv.URL,
		"CG_AUTH_URL":              conf.AuthURL,
		"CG_IMPORTS_URL":           conf.ImportsURL,
		"CG_API_URL":               conf.APIURL,
		"CG_CLIENT_ID":             conf.ClientID,
		"CG_CLIENT_SECRET":         conf.ClientSecret,
		"CG_ACCOUNT_CONFIGURATION": "account",
		"CG_CONTACT_CONFIGURATION": "contact",
		"CG_HTTP_ADDR":             "127.0.0.1:0",
		"CG_CONTACT_WAIT":          "1s",
		"LOG_FORMAT":               "json",
	}, "run")
	addr := ""
	proctest.WaitFor(t, 30*time.Second, 50*time.Millisecond, "the worker serves /metrics", func() (bool, string) {
		addr = proctest.ServingAddr(p.Log())
		return addr != "", p.Tail(5)
	})

	js := srv.JetStream(t)
	natstest.Publish(t, js, "cg.events.activity", []byte(validActivity), 20)
	natstest.Publish(t, js, "cg.events.activity", []byte(`{"account":"Initech","type":"Meeting","source":"test","contact":"nobody@example.com"}`), 1)
	natstest.Publish(t, js, "cg.events.activity", []byte(`{"account":""}`), 2)
	natstest.Publish(t, js, "cg.events.account", []byte(`not json`), 1)

	var text string
	proctest.WaitFor(t, 60*time.Second, 200*time.Millisecond, "delivered, dead-lettered, retried and synced", func() (bool, string) {
		text = get(t, "http://"+addr+"/metrics")
		for _, want := range []string{`outcome="delivered"`, `outcome="dead-lettered"`, "cgworker_retries_total{", "cgworker_sync_last_success_seconds{"} {
			if !strings.Contains(text, want) {
				return false, "waiting for " + want
			}
		}
		return true, ""
	})
	return text
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// fromPrometheus are series Prometheus makes itself when it scrapes.
var fromPrometheus = map[string]bool{"up": true}

// TestMetricsExist: every metric that the dashboard, the alert rules and
// the KEDA query name is served on /metrics by a worker that has delivered,
// dead-lettered and retried events and synced.
func TestMetricsExist(t *testing.T) {
	t.Parallel()
	c := newDeployChecker(deployDir, facts(t))
	c.run()
	if len(c.metricRefs) < 10 {
		t.Fatalf("the queries name only %d metrics: the checker no longer finds them", len(c.metricRefs))
	}
	text := scrapeBusyWorker(t)
	for _, name := range slices.Sorted(maps.Keys(c.metricRefs)) {
		if fromPrometheus[name] {
			continue
		}
		served := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[{ ]`).MatchString(text)
		if !served {
			t.Errorf("%s is not served on /metrics; named at %s", name, strings.Join(c.metricRefs[name], ", "))
		}
	}
}
