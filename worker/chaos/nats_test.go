package chaos

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
)

// The NATS server restarted (same store) while two replicas consume and a
// producer keeps publishing: acknowledgements and dead-letter publishes
// lost in the restart lead to redeliveries, never to a lost or duplicated
// outcome.
func TestNATSRestart(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{Latency: 20 * time.Millisecond})
	all := newBatch("natsrestart").activities(1500).accounts(150).contacts(150).
		schemaInvalid(100).malformed(50).rejected(30).shuffled()
	first, second := all[:len(all)/2], all[len(all)/2:]
	seqs := publish(t, w.js, first)

	a := start(t, "replica-a", w.env(), "run")
	b := start(t, "replica-b", w.env(), "run")
	progress(t, w.api, 200, a, b)
	waitRest := publishInBackground(t, w.js, second)

	w.nats.Restart(t)
	t.Logf("NATS restarted with %d activities stored", w.api.ActivityCount())
	for id, seq := range waitRest() {
		seqs[id] = seq
	}

	waitSettled(t, 90*time.Second, w.js, w.api, all)
	verify(t, w.js, w.api, all, seqs)
	for _, p := range []*proc{a, b} {
		if !p.Running() {
			t.Errorf("%s exited: %v", p.Name, p.Err())
		}
		if len(p.logLines("nats reconnected")) == 0 {
			t.Errorf("%s never logged a reconnect", p.Name)
		}
	}
}

// One node of a three-node cluster is stopped and restarted while two
// replicas consume R3 streams and a producer keeps publishing; the
// replicas get all three URLs.
func TestClusterNodeRestart(t *testing.T) {
	chaosTest(t)
	c := newCluster(t, 3)
	api := cgapitest.NewServer(t, emulator.Options{Latency: 20 * time.Millisecond, NoRequestLog: true})
	js := connect(t, c.urls())
	ensureStreams(t, js, 3)
	waitStreamsCurrent(t, js)

	all := newBatch("cluster").activities(1000).accounts(100).contacts(100).
		schemaInvalid(80).malformed(40).shuffled()
	first, second := all[:len(all)/2], all[len(all)/2:]
	seqs := publish(t, js, first)

	// Replicas start one after the other, as in a rolling deployment: a
	// replica whose start-up JetStream calls time out exits 1 for its
	// orchestrator to restart it, and three race-instrumented servers on
	// two cores are slow enough for that while a peer creates consumers.
	env := workerEnv(c.urls(), api)
	a := start(t, "replica-a", env, "run")
	a.waitReady()
	b := start(t, "replica-b", env, "run")
	b.waitReady()
	progress(t, api, 200, a, b)
	waitRest := publishInBackground(t, js, second)

	// The victim is the node of the activity consumer: the worker creates
	// its consumers with one replica, so this is the harshest node to lose.
	ctx := t.Context()
	var victim string
	for _, k := range kinds {
		cons, err := js.Consumer(ctx, names.EventsStream(), names.Consumer(k))
		if err != nil {
			t.Fatal(err)
		}
		info := cons.CachedInfo()
		t.Logf("consumer %s: %d replicas, leader %s", info.Name, info.Config.Replicas, info.Cluster.Leader)
		if victim == "" {
			victim = info.Cluster.Leader
		}
	}
	stopped := c.stop(victim)
	t.Logf("stopped %s with %d activities stored", victim, api.ActivityCount())
	eventually(t, 30*time.Second, names.EventsStream()+" led by a survivor, "+victim+" seen offline", func() (bool, string) {
		s, err := js.Stream(ctx, names.EventsStream())
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false, fmt.Sprint("stream info: ", err)
		}
		gone := false
		for _, p := range info.Cluster.Replicas {
			if p.Name == victim && (p.Offline || !p.Current) {
				gone = true
			}
		}
		return info.Cluster.Leader != "" && info.Cluster.Leader != victim && gone,
			fmt.Sprintf("leader %q, victim offline %v", info.Cluster.Leader, gone)
	})
	c.start(t, stopped)
	t.Logf("restarted %s with %d activities stored", victim, api.ActivityCount())
	for id, seq := range waitRest() {
		seqs[id] = seq
	}

	waitSettled(t, 120*time.Second, js, api, all)
	verify(t, js, api, all, seqs)
	for _, p := range []*proc{a, b} {
		if !p.Running() {
			t.Errorf("%s exited: %v", p.Name, p.Err())
		}
	}
}

// cluster is a three-node JetStream cluster on loopback, in the test
// process. Nodes keep their ports and stores across a stop and start.
type cluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes []*clusterNode
}

type clusterNode struct {
	name        string
	clientPort  int
	clusterPort int
	storeDir    string
	srv         *server.Server // nil while stopped
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	dir := t.TempDir()
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			name:        fmt.Sprintf("n%d", i+1),
			clientPort:  freePort(t),
			clusterPort: freePort(t),
			storeDir:    filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
		})
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.stop(nd.name)
		}
	})
	// Nodes start together: each waits for a JetStream quorum.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = c.run(nd) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// freePort asks the OS for a free loopback port. Routes must name their
// peers' ports before the peers start, so port 0 will not do.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *cluster) options(nd *clusterNode) *server.Options {
	var routes []*url.URL
	for _, peer := range c.nodes {
		if peer != nd {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", peer.clusterPort)})
		}
	}
	return &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.clientPort,
		MaxPayload: 8 << 20,
		JetStream:  true,
		StoreDir:   nd.storeDir,
		Cluster: server.ClusterOpts{
			Name: "chaos",
			Host: "127.0.0.1",
			Port: nd.clusterPort,
		},
		Routes:                 routes,
		NoLog:                  true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
}

func (c *cluster) run(nd *clusterNode) error {
	s, err := server.NewServer(c.options(nd))
	if err != nil {
		return fmt.Errorf("node %s: %w", nd.name, err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("node %s: not ready for connections", nd.name)
	}
	c.mu.Lock()
	nd.srv = s
	c.mu.Unlock()
	return nil
}

// urls are the client URLs of every node, comma-separated.
func (c *cluster) urls() string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", nd.clientPort))
	}
	return strings.Join(out, ",")
}

// stop shuts the named node down and returns it for start.
func (c *cluster) stop(name string) *clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.name == name {
			if nd.srv != nil {
				nd.srv.Shutdown()
				nd.srv.WaitForShutdown()
				nd.srv = nil
			}
			return nd
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// start brings a stopped node back on its ports with its store, and waits
// until it has caught up with the cluster's JetStream state.
func (c *cluster) start(t *testing.T, nd *clusterNode) {
	t.Helper()
	if err := c.run(nd); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, nd.name+" current", func() (bool, string) {
		return nd.srv.JetStreamIsCurrent(), "catching up"
	})
}

// waitStreamsCurrent waits until every stream of the worker has a leader
// and all its replicas are current.
func waitStreamsCurrent(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := t.Context()
	for _, name := range []string{names.EventsStream(), names.DLQStream(), names.ResponsesStream()} {
		eventually(t, 30*time.Second, name+" replicas current", func() (bool, string) {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			info, err := s.Info(ctx)
			if err != nil || info.Cluster == nil {
				return false, fmt.Sprint("stream info: ", err)
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					return false, p.Name + " not current"
				}
			}
			return info.Cluster.Leader != "", fmt.Sprintf("leader %q", info.Cluster.Leader)
		})
	}
}
