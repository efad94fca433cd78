package perf

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker/proctest"
)

// activity is the event every run publishes: typical and valid, without a
// reference, so cgworker derives one and rewrites the body (its full hot
// path) while the baseline forwards it as it is.
const activity = `{"account":"ACME Industries","type":"Support Ticket","source":"Freshdesk",` +
	`"contact":"john.doe@example.com","happened_at":"2019-10-06 22:34:45",` +
	`"additional_information_object":{"subject":"Printer on fire","priority":3,"agent":"Jane Roe"}}`

// Latency phase: events published at a fixed rate, well below every
// configuration's capacity, so that the times measured are the pipeline's
// and not a queue's.
const (
	latencyRate   = 1000 // events/s
	latencyEvents = 2000
)

func TestMain(m *testing.M) { os.Exit(proctest.Run(m)) }

// testdata is left out of ./... but builds by path.
func baselineBinary(tb testing.TB) string {
	tb.Helper()
	return proctest.Binary(tb, "baseline", "./testdata/baseline")
}

// TestBaseline proves the yardstick does its job: every event reaches the
// API and is acknowledged.
func TestBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	const n = 50
	ns := natstest.NewServer(t)
	emu := cgapitest.NewServer(t, emulator.Options{})
	js, cons := prepareStream(t, ns.URL)
	publish(t, js, n)
	p := start(t, "baseline", baselineBinary(t), workerEnv(ns.URL, emu.URL))
	waitFor(t, 30*time.Second, "every event acknowledged", func() bool { return drained(t, cons, n) })
	if got := emu.ActivityCount(); got != n {
		t.Errorf("emulator stored %d activities, want %d", got, n)
	}
	p.stop(t)
}

// BenchmarkBinary is cgworker's performance record (issues 8 and 14). Each
// comparison runs two consumers in alternating runs, -pairs pairs of them
// (5 by default), each run with its own NATS server and emulator, so that
// both consumers of a pair see the same machine. It reports each
// consumer's median figures (prefixed "a-" for the first, "b-" for the
// second) and the medians of the per-pair ratios a/b. One run measures:
//
//   - events/s: a backlog of N valid activities is published while the
//     durable consumer is paused; the replicas start and each registers its
//     pull request; then the pause ends and the clock runs until
//     the consumer's ack floor reaches the last event (polled every 5 ms).
//     Start-up is therefore not counted, and neither is publishing.
//   - cpu-µs/event: user+system CPU of the replicas during the backlog drain
//     (/proc/PID/stat, 10 ms ticks), per event; emu-cpu-µs/event and
//     nats-cpu-µs/event the same for the emulator process and for the test
//     process (the embedded NATS server, an OTLP sink when spans are
//     exported, and the test's 5 ms polling).
//   - p50-ms, p99-ms: afterwards, 2,000 events are published at 1,000/s;
//     the consumer samples every acknowledgement (sample_freq 100%) and the
//     server's ack advisory, received by the test over the in-process
//     server, marks the acknowledgement. Latency = advisory received - time
//     just before the publish call.
//   - peak-rss-MiB: the largest VmHWM of the replicas, read from /proc just
//     before they are stopped; peak-heap-MiB: the largest heap their
//     GODEBUG=gctrace=1 lines report (1 MiB resolution).
//
// The comparisons:
//
//   - latency=0, latency=20ms: `cgworker run` (a) against the plain
//     consumer of testdata/baseline (b), emulator latency 0 and 20 ms.
//   - tracing=10%: cgworker exporting spans over OTLP/HTTP to a sink in the
//     test process, one trace in ten sampled and no incoming traceparent
//     (a), against cgworker exporting nothing (b).
//   - gc=...: cgworker with another GOGC or a GOMEMLIMIT (a) against the
//     plain consumer (b), to price the garbage collector's setting.
//   - replicas=3: three cgworker replicas against one.
//   - against/latency=0, against/latency=20ms, with -against BIN: this
//     build (a) against another cgworker binary (b), an older build say,
//     to price a change with everything else equal.
//
// Everything shares the machine's cores: the NATS server in the test
// process, the emulator process and the replicas.
//
//	go test -run '^$' -bench 'Binary/latency' ./worker/perf/ -pairs 5
func BenchmarkBinary(b *testing.B) {
	cg, base := proctest.Cgworker(b), baselineBinary(b)
	cgworker := consumer{bin: cg, args: []string{"run"}, replicas: 1}
	baseline := consumer{bin: base, replicas: 1}
	const backlog0, backlog20 = 20_000, 10_000
	b.Run("latency=0", func(b *testing.B) {
		compare(b, runSpec{emulator: cg, events: backlog0}, cgworker, baseline)
	})
	b.Run("latency=20ms", func(b *testing.B) {
		compare(b, runSpec{emulator: cg, events: backlog20, latency: 20 * time.Millisecond}, cgworker, baseline)
	})
	b.Run("tracing=10%", func(b *testing.B) {
		sink := otlpSink(b)
		exporting := cgworker.with(map[string]string{
			"OTEL_TRACES_EXPORTER":               "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink + "/v1/traces",
			"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":            "0.1",
		})
		compare(b, runSpec{emulator: cg, events: backlog0}, exporting, cgworker)
	})
	for _, gc := range []struct{ name, gogc, limit string }{
		{"gc=100", "100", ""},
		{"gc=200", "200", ""},
		{"gc=400", "400", ""},
		{"gc=off+limit=24MiB", "off", "24MiB"},
		{"gc=100+limit=24MiB", "100", "24MiB"},
	} {
		b.Run(gc.name, func(b *testing.B) {
			env := map[string]string{"GOGC": gc.gogc}
			if gc.limit != "" {
				env["GOMEMLIMIT"] = gc.limit
			}
			compare(b, runSpec{emulator: cg, events: backlog0}, cgworker.with(env), baseline)
		})
	}
	if *against != "" {
		// This build against another (-against BIN), to price a change:
		// both sides pay the same emulator and NATS.
		other := cgworker
		other.bin = *against
		b.Run("against/latency=0", func(b *testing.B) {
			compare(b, runSpec{emulator: cg, events: backlog0}, cgworker, other)
		})
		b.Run("against/latency=20ms", func(b *testing.B) {
			compare(b, runSpec{emulator: cg, events: backlog20, latency: 20 * time.Millisecond}, cgworker, other)
		})
	}
	b.Run("replicas=3", func(b *testing.B) {
		three := cgworker
		three.replicas = 3
		compare(b, runSpec{emulator: cg, events: backlog20, latency: 20 * time.Millisecond}, three, cgworker)
	})
}

// pairs is how many alternating pairs of runs a comparison makes.
var pairs = flag.Int("pairs", 5, "BenchmarkBinary: alternating runs of each consumer per comparison")

// profileDir, when set, gets a `perf record` CPU profile of every replica
// and of the test process (the NATS server) during each backlog drain:
// read them with `perf report -i FILE --no-children --sort sym`.
var profileDir = flag.String("profile", "", "BenchmarkBinary: directory for perf record profiles of the drains")

// against is another cgworker binary (an older build, say) that
// BenchmarkBinary/against compares this build with.
var against = flag.String("against", "", "BenchmarkBinary/against: another cgworker binary to compare this build with")

// consumer is what a run starts: replicas of a binary with extra
// environment.
type consumer struct {
	bin      string
	args     []string
	env      map[string]string // on top of workerEnv
	replicas int
}

func (c consumer) with(env map[string]string) consumer {
	c.env = maps.Clone(c.env)
	if c.env == nil {
		c.env = map[string]string{}
	}
	maps.Copy(c.env, env)
	return c
}

// compare runs a and b alternately, -pairs times each (b.N times that),
// and reports their medians and the medians of the pairs' ratios.
func compare(b *testing.B, s runSpec, ca, cb consumer) {
	var as, bs []result
	for range b.N {
		for i := range *pairs {
			ra, rb := runOnce(b, s, ca), runOnce(b, s, cb)
			b.Logf("pair %d: a %s; b %s", i+1, ra, rb)
			as, bs = append(as, ra), append(bs, rb)
		}
	}
	ratio := func(f func(result) float64) float64 {
		rs := make([]float64, len(as))
		for i := range as {
			rs[i] = f(as[i]) / f(bs[i])
		}
		return median(rs)
	}
	b.ReportMetric(0, "ns/op") // runs, not operations
	for _, x := range []struct {
		prefix string
		rs     []result
	}{{"a-", as}, {"b-", bs}} {
		m := func(f func(result) float64) float64 { return median(mapSlice(x.rs, f)) }
		b.ReportMetric(m(result.eventsPerSecond), x.prefix+"events/s")
		b.ReportMetric(m(result.cpuPerEvent), x.prefix+"cpu-µs/event")
		b.ReportMetric(m(func(r result) float64 { return r.emuCPU }), x.prefix+"emu-cpu-µs/event")
		b.ReportMetric(m(func(r result) float64 { return r.natsCPU }), x.prefix+"nats-cpu-µs/event")
		b.ReportMetric(m(func(r result) float64 { return ms(r.p50) }), x.prefix+"p50-ms")
		b.ReportMetric(m(func(r result) float64 { return ms(r.p99) }), x.prefix+"p99-ms")
		b.ReportMetric(m(func(r result) float64 { return mib(r.peakRSS) }), x.prefix+"peak-rss-MiB")
		b.ReportMetric(m(func(r result) float64 { return mib(r.peakHeap) }), x.prefix+"peak-heap-MiB")
		b.ReportMetric(m(func(r result) float64 { return float64(r.pulls) * 1000 / float64(r.events) }), x.prefix+"pulls/1k")
	}
	b.ReportMetric(ratio(result.eventsPerSecond), "events/s-a/b")
	b.ReportMetric(ratio(result.cpuPerEvent), "cpu/event-a/b")
}

func median(xs []float64) float64 {
	xs = slices.Sorted(slices.Values(xs))
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func mapSlice(rs []result, f func(result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }

type runSpec struct {
	emulator string // the cgworker binary, for `cgworker emulator`
	latency  time.Duration
	events   int
}

// result is one run's figures.
type result struct {
	events          int
	elapsed         time.Duration // backlog drain
	workerCPU       time.Duration // all replicas, during the drain
	emuCPU, natsCPU float64       // µs per event, during the drain
	p50, p99        time.Duration
	peakRSS         int64 // bytes, the largest replica's
	peakHeap        int64 // bytes, the largest replica's
	pulls           int64 // pull requests during the drain
}

func (r result) eventsPerSecond() float64 { return float64(r.events) / r.elapsed.Seconds() }

// cpuPerEvent is the replicas' CPU per event, in µs.
func (r result) cpuPerEvent() float64 {
	return float64(r.workerCPU) / float64(time.Microsecond) / float64(r.events)
}

func (r result) String() string {
	return fmt.Sprintf("%.0f events/s, %.1f µs CPU/event, %d pulls, p50 %.1f ms, p99 %.1f ms, RSS %.1f MiB, heap %.0f MiB",
		r.eventsPerSecond(), r.cpuPerEvent(), r.pulls, ms(r.p50), ms(r.p99), mib(r.peakRSS), mib(r.peakHeap))
}

// countPulls counts the pull requests made to a consumer from now on; the
// returned function stops counting and returns the count.
func countPulls(tb testing.TB, url, stream, durable string) func() int64 {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int64
	if _, err := nc.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+durable, func(*nats.Msg) { n.Add(1) }); err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	return func() int64 {
		_ = nc.Flush()
		nc.Close()
		return n.Load()
	}
}

var profileRuns atomic.Int64

// profile starts `perf record` on the replicas and on the test process when
// -profile is set, and returns what stops them.
func profile(b *testing.B, procs []proc) (stop func()) {
	if *profileDir == "" {
		return func() {}
	}
	run := profileRuns.Add(1)
	pids := map[string]int{"nats": os.Getpid()}
	for _, p := range procs {
		pids[fmt.Sprintf("%s-%s", filepath.Base(p.bin), p.Name)] = p.Pid()
	}
	var recs []*proctest.Process
	for name, pid := range pids {
		out := filepath.Join(*profileDir, fmt.Sprintf("run%d-%s.data", run, name))
		recs = append(recs, proctest.Start(b, "perf-"+name, "perf", nil,
			"record", "-F", "999", "-g", "-o", out, "-p", strconv.Itoa(pid)))
	}
	return func() {
		for _, r := range recs {
			r.Signal(syscall.SIGINT)
			r.Wait(30 * time.Second)
		}
	}
}

// otlpSink is an OTLP/HTTP endpoint that takes and discards whatever is
// exported to it, returning its base URL.
func otlpSink(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

func runOnce(b *testing.B, s runSpec, c consumer) result {
	b.StopTimer()
	ns := natstest.NewServer(b)
	emu := start(b, "emulator", s.emulator, nil, "emulator", "--addr", "127.0.0.1:0", "--latency", s.latency.String())
	emuURL := emu.url(b)
	js, cons := prepareStream(b, ns.URL)
	ctx := context.Background()
	names := queue.NewNames("")
	stream, durable := names.EventsStream(), names.Consumer(schemas.Activity)
	if _, err := js.PauseConsumer(ctx, stream, durable, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	last := publish(b, js, s.events)

	env := workerEnv(ns.URL, emuURL)
	env["GODEBUG"] = "gctrace=1" // one line per GC on stderr, for the peak heap
	maps.Copy(env, c.env)
	procs := make([]proc, c.replicas)
	for i := range procs {
		procs[i] = start(b, fmt.Sprintf("replica-%d", i+1), c.bin, env, c.args...)
	}
	waitFor(b, 60*time.Second, "every replica pulling", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting >= c.replicas
	})

	// Backlog drain. The test counts the consumer's pull requests by
	// listening on their subject.
	pulls := countPulls(b, ns.URL, stream, durable)
	workerCPU0, emuCPU0, selfCPU0 := cpuOf(b, procs...), cpuOf(b, emu), proctest.SelfCPU()
	// The server kicks a paused consumer when its pause ends, but not when
	// it is resumed early: end the pause shortly instead of resuming.
	t0 := time.Now().Add(50 * time.Millisecond)
	if _, err := js.PauseConsumer(ctx, stream, durable, t0); err != nil {
		b.Fatal(err)
	}
	stopProfiles := profile(b, procs)
	b.StartTimer()
	nextReport := t0.Add(5 * time.Second)
	waitFor(b, 10*time.Minute, "backlog acknowledged", func() bool {
		if time.Now().After(nextReport) { // a slow drain says where it stands
			nextReport = nextReport.Add(5 * time.Second)
			if info, err := cons.Info(ctx); err == nil {
				b.Logf("after %s: %d pending, %d awaiting ack, %d pull requests waiting, ack floor %d of %d",
					time.Since(t0).Round(time.Millisecond), info.NumPending, info.NumAckPending, info.NumWaiting, info.AckFloor.Stream, last)
			}
		}
		return drained(b, cons, last)
	})
	elapsed := time.Since(t0)
	b.StopTimer()
	stopProfiles()
	perEvent := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(s.events) }
	r := result{
		events:    s.events,
		elapsed:   elapsed,
		workerCPU: cpuOf(b, procs...) - workerCPU0,
		emuCPU:    perEvent(cpuOf(b, emu) - emuCPU0),
		natsCPU:   perEvent(proctest.SelfCPU() - selfCPU0),
		pulls:     pulls(),
	}

	r.p50, r.p99 = measureLatency(b, js, ns.URL)

	for _, p := range procs {
		r.peakRSS = max(r.peakRSS, peakRSS(b, p))
	}
	for _, p := range procs {
		p.stop(b)
		r.peakHeap = max(r.peakHeap, peakHeap(b, p))
	}
	emu.stop(b)
	if n := dlqCount(b, js); n > 0 {
		b.Fatalf("%d events were dead-lettered; the benchmark's events must all be valid", n)
	}
	return r
}

// prepareStream creates the streams and the activity consumer as cgworker
// does, with every acknowledgement sampled for the latency phase.
func prepareStream(tb testing.TB, url string) (jetstream.JetStream, jetstream.Consumer) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	sc := queue.StreamConfig{Names: queue.NewNames("")}
	if err := queue.EnsureStreams(ctx, js, sc); err != nil {
		tb.Fatal(err)
	}
	cons, err := queue.EnsureConsumer(ctx, js, sc, schemas.Activity)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	cfg.SampleFrequency = "100%"
	if cons, err = js.UpdateConsumer(ctx, sc.Names.EventsStream(), cfg); err != nil {
		tb.Fatal(err)
	}
	return js, cons
}

// publish publishes n activities and returns the stream sequence of the
// last.
func publish(tb testing.TB, js jetstream.JetStream, n int) uint64 {
	tb.Helper()
	return natstest.Publish(tb, js, queue.NewNames("").EventSubject(schemas.Activity), []byte(activity), n)
}

// drained reports whether every event up to stream sequence last is
// acknowledged.
func drained(tb testing.TB, cons jetstream.Consumer, last uint64) bool {
	info, err := cons.Info(context.Background())
	return err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0
}

// ackAdvisory is the part of the server's consumer ack metric we read.
type ackAdvisory struct {
	StreamSeq uint64 `json:"stream_seq"`
}

// measureLatency publishes latencyEvents at latencyRate and returns the
// median and 99th percentile of publish-to-acknowledgement times.
func measureLatency(b *testing.B, js jetstream.JetStream, url string) (p50, p99 time.Duration) {
	b.Helper()
	names := queue.NewNames("")
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	acked := make(map[uint64]time.Time, latencyEvents)
	subject := "$JS.EVENT.METRIC.CONSUMER.ACK." + names.EventsStream() + "." + names.Consumer(schemas.Activity)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		now := time.Now()
		var a ackAdvisory
		if json.Unmarshal(m.Data, &a) == nil {
			mu.Lock()
			acked[a.StreamSeq] = now
			mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}

	type sent struct {
		at  time.Time
		ack jetstream.PubAckFuture
	}
	published := make([]sent, 0, latencyEvents)
	interval := time.Second / latencyRate
	start := time.Now()
	for i := range latencyEvents {
		// Pacing the load, not waiting for a condition.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		at := time.Now()
		f, err := js.PublishAsync(names.EventSubject(schemas.Activity), []byte(activity), jetstream.WithStallWait(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		published = append(published, sent{at, f})
	}
	seqs := make([]uint64, len(published))
	for i, p := range published {
		select {
		case ack := <-p.ack.Ok():
			seqs[i] = ack.Sequence
		case err := <-p.ack.Err():
			b.Fatal(err)
		}
	}
	waitFor(b, 2*time.Minute, "every acknowledgement of the latency phase", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, seq := range seqs {
			if _, ok := acked[seq]; !ok {
				return false
			}
		}
		return true
	})
	lat := make([]time.Duration, len(seqs))
	mu.Lock()
	for i, seq := range seqs {
		lat[i] = acked[seq].Sub(published[i].at)
	}
	mu.Unlock()
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

func dlqCount(tb testing.TB, js jetstream.JetStream) uint64 {
	tb.Helper()
	s, err := js.Stream(context.Background(), queue.NewNames("").DLQStream())
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// workerEnv is the environment of cgworker run (and of the baseline): the
// README's defaults but for the sync, which is off, and logs at warn.
func workerEnv(natsURL, apiURL string) map[string]string {
	return map[string]string{
		"NATS_URL":         natsURL,
		"CG_AUTH_URL":      apiURL + emulator.TokenPath,
		"CG_IMPORTS_URL":   apiURL,
		"CG_API_URL":       apiURL,
		"CG_CLIENT_ID":     "dev",
		"CG_CLIENT_SECRET": "dev",
		"CG_SYNC":          "false",
		"CG_HTTP_ADDR":     "127.0.0.1:0",
		"LOG_LEVEL":        "warn",
	}
}

// proc is a process started by a benchmark: the emulator, a replica of
// cgworker or of the baseline.
type proc struct {
	*proctest.Process
	bin string
}

func start(tb testing.TB, name, bin string, env map[string]string, args ...string) proc {
	tb.Helper()
	return proc{proctest.Start(tb, name, bin, env, args...), bin}
}

// url waits for the emulator's first line, its base URL.
func (p proc) url(tb testing.TB) string {
	tb.Helper()
	var url string
	waitFor(tb, 30*time.Second, p.Name+"'s URL", func() bool {
		first, _, complete := strings.Cut(p.Stdout(), "\n")
		if complete {
			url = first
		}
		return complete
	})
	if !strings.HasPrefix(url, "http://") {
		tb.Fatalf("%s printed %q first, want its URL", p.Name, url)
	}
	return url
}

// stop sends SIGTERM and waits for a clean exit.
func (p proc) stop(tb testing.TB) {
	tb.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(60 * time.Second); code != 0 {
		tb.Fatalf("%s exited %d after SIGTERM, want 0", p.Name, code)
	}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuOf is the user+system CPU time the processes have used so far.
func cpuOf(tb testing.TB, procs ...proc) time.Duration {
	tb.Helper()
	var total time.Duration
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			tb.Fatalf("%s: %v", p.Name, err)
		}
		// Fields after the command name, which is in parentheses: state is
		// field 3, utime 14, stime 15.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			tb.Fatalf("%s: /proc stat: %v", p.Name, err)
		}
		total += time.Duration(utime+stime) * clockTick
	}
	return total
}

// peakRSS is the process's VmHWM, its peak resident set.
func peakRSS(tb testing.TB, p proc) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		tb.Fatalf("%s: %v", p.Name, err)
	}
	var parts []string // what the resident set is made of now, for the log
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	tb.Logf("%s: %s", p.Name, strings.Join(parts, ", "))
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("%s: VmHWM %q: %v", p.Name, v, err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("%s: no VmHWM in /proc status", p.Name)
	return 0
}

// gcHeap matches the heap sizes of a gctrace line: at the start of the GC,
// at its end, and live ("4->5->2 MB"; the runtime's MB are MiB).
var gcHeap = regexp.MustCompile(`(\d+)->(\d+)->\d+ MB`)

// peakHeap is the largest heap the process's gctrace lines report: the
// heap peaks as a GC runs, so this misses at most the growth after the
// last GC.
func peakHeap(tb testing.TB, p proc) int64 {
	tb.Helper()
	var peak int64
	for line := range strings.Lines(p.Log()) {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		if m := gcHeap.FindStringSubmatch(line); m != nil {
			start, _ := strconv.ParseInt(m[1], 10, 64)
			end, _ := strconv.ParseInt(m[2], 10, 64)
			peak = max(peak, start<<20, end<<20)
		}
	}
	if peak == 0 {
		tb.Fatalf("%s: no gctrace line in its output", p.Name)
	}
	return peak
}

// waitFor polls cond every 5 ms, the resolution of the drain time, until
// it holds or the deadline passes.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	proctest.WaitFor(tb, within, 5*time.Millisecond, what, func() (bool, string) { return cond(), "" })
}
