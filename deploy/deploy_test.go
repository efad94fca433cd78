package deploy

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// The deploy drift test: the files in deploy/ (Dockerfile, compose,
// Kubernetes manifests, optional components) are checked against the binary
// they run, so that renaming a setting, a command, a flag, a probe path or a
// stream name fails here rather than in someone's cluster.

// deployDir is deploy/: this package's own folder.
const deployDir = "."

func TestDeploy(t *testing.T) {
	t.Parallel()
	bin := facts(t)
	// The Dockerfile stamps the version and commit with -ldflags -X; the
	// binary built with its flags must report them.
	if !strings.Contains(bin.version, stampVersion) || !strings.Contains(bin.version, stampCommit) {
		t.Errorf("built with the Dockerfile's -ldflags, `cgworker version` says %q: want %s and %s", bin.version, stampVersion, stampCommit)
	}

	c := newDeployChecker(deployDir, bin)
	c.run()
	for _, p := range c.problems {
		t.Error(p)
	}

	// The checks above pass vacuously if the checker stops recognising the
	// files: insist that it saw every part.
	if len(c.pods) != 1 || len(c.emulator) != 1 || c.composeRuns != 1 {
		t.Errorf("saw %d worker pod templates, %d compose emulators and %d compose workers; want 1 each",
			len(c.pods), len(c.emulator), c.composeRuns)
	}
	count := map[string]int{}
	for key := range c.objects {
		kind, _, _ := strings.Cut(key, "/")
		count[kind]++
	}
	for kind, want := range map[string]int{
		"Deployment": 1, "ConfigMap": 2, "Secret": 1, "Service": 1, "PodDisruptionBudget": 1,
		"ScaledObject": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "Stream": 3, "Consumer": 3, "KeyValue": 1,
	} {
		if count[kind] != want {
			t.Errorf("saw %d %s objects, want %d", count[kind], kind, want)
		}
	}
}

// TestDeployDrift proves the checker catches drift: each case copies deploy/
// to a temporary folder, breaks one thing and expects a problem naming it.
func TestDeployDrift(t *testing.T) {
	t.Parallel()
	bin := facts(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"unknown variable in compose", "compose.yaml",
			"      LOG_FORMAT: text\n", "      LOG_FORMAT: text\n      CG_TYPO: x\n", "CG_TYPO"},
		{"unknown variable in ConfigMap", "kubernetes/cgworker.env",
			"LOG_FORMAT=json\n", "LOG_FORMAT=json\nCG_TYPO=x\n", "CG_TYPO"},
		{"unknown non-CG variable in ConfigMap", "kubernetes/cgworker.env",
			"LOG_FORMAT=json\n", "LOG_FORMAT=json\nLOG_FROMAT=text\n", "LOG_FROMAT"},
		{"unknown variable in container env", "kubernetes/deployment.yaml",
			"            - name: GOMEMLIMIT\n", "            - name: NATS_UR\n              value: x\n            - name: GOMEMLIMIT\n", "NATS_UR"},
		{"unknown variable in a third-party service", "compose.yaml",
			"      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer\n", "      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer\n      CG_TYPO: x\n", "CG_TYPO"},
		{"unknown variable in the README", "README.md", "", "\nSet CG_TYPO.\n", "CG_TYPO"},
		{"unknown variable in the Dockerfile", "Dockerfile",
			"USER 65532:65532\n", "ENV CG_TYPO=1\nUSER 65532:65532\n", "CG_TYPO"},
		{"Secret keys loaded as variables", "kubernetes/deployment.yaml",
			"            - configMapRef:\n", "            - secretRef:\n                name: cgworker-credentials\n            - configMapRef:\n", "client-id"},
		{"readiness path", "kubernetes/deployment.yaml", "path: /readyz", "path: /ready", "/readyz"},
		{"liveness path", "kubernetes/deployment.yaml", "path: /healthz", "path: /health", "/healthz"},
		{"HTTP port moved", "kubernetes/cgworker.env", "CG_HTTP_ADDR=:8080", "CG_HTTP_ADDR=:9090", "9090"},
		{"image", "kubernetes/deployment.yaml",
			"image: ghcr.io/cgworker/cgworker:v1.0.0", "image: ghcr.io/acme/cgworker:v1.0.0", "ghcr.io/acme/cgworker"},
		{"moving image tag", "kubernetes/deployment.yaml",
			"image: ghcr.io/cgworker/cgworker:v1.0.0", "image: ghcr.io/cgworker/cgworker:latest", "pin a release"},
		{"moving tag in the kustomization", "kubernetes/kustomization.yaml", "newTag: v1.0.0", "newTag: latest", "pin a release"},
		{"command", "kubernetes/deployment.yaml", `args: ["run"]`, `args: ["serve"]`, `"serve"`},
		{"run flag", "kubernetes/deployment.yaml", `args: ["run"]`, `args: ["run", "--no-such-flag"]`, "no-such-flag"},
		{"emulator flag", "compose.yaml", `"--responses", "500"`, `"--response", "500"`, "response"},
		{"emulator credentials", "compose.yaml", "CG_CLIENT_SECRET: dev", "CG_CLIENT_SECRET: other", "CG_CLIENT_SECRET"},
		{"emulator configuration", "compose.yaml",
			"CG_ACCOUNT_CONFIGURATION: account", "CG_ACCOUNT_CONFIGURATION: accounts", "accounts"},
		{"emulator port", "compose.yaml", "CG_API_URL: http://emulator:8081", "CG_API_URL: http://emulator:8082", "8082"},
		{"unknown compose host", "compose.yaml",
			"OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: http://collector:4318", "collector"},
		{"compose grace period", "compose.yaml", "stop_grace_period: 40s", "stop_grace_period: 10s", "stop_grace_period"},
		{"missing compose file", "compose.yaml", "./otel-collector.yaml:", "./otel.yaml:", "otel.yaml"},
		{"broken YAML", "kubernetes/pdb.yaml", "  maxUnavailable: 1\n", "  maxUnavailable: 1\n   oops: 2\n", "yaml: line"},
		{"duplicate YAML key", "kubernetes/pdb.yaml", "  maxUnavailable: 1\n", "  maxUnavailable: 1\n  maxUnavailable: 2\n", "already defined"},
		{"grace period", "kubernetes/deployment.yaml",
			"terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds"},
		{"GOMEMLIMIT above the limit", "kubernetes/deployment.yaml", "value: 230MiB", "value: 300MiB", "GOMEMLIMIT"},
		{"secret key", "kubernetes/deployment.yaml", "key: client-id", "key: client_id", "client_id"},
		{"secret file not mounted", "kubernetes/deployment.yaml",
			"value: /var/run/secrets/cgworker/client-secret", "value: /etc/cgworker/client-secret", "CG_CLIENT_SECRET_FILE"},
		{"writable root", "kubernetes/deployment.yaml",
			"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"service port", "kubernetes/service.yaml", "targetPort: http", "targetPort: metrics", "metrics"},
		{"unlisted manifest", "kubernetes/extra.yaml", "",
			"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cgworker\n", "extra.yaml"},
		{"consumer delivery limit", "kubernetes/optional/nack/consumers.yaml", "maxDeliver: -1", "maxDeliver: 5", "maxDeliver"},
		{"consumer subject", "kubernetes/optional/nack/consumers.yaml",
			"filterSubject: cg.events.activity", "filterSubject: cg.events.activities", "cg.events.activities"},
		{"DLQ duplicate window", "kubernetes/optional/nack/streams.yaml", "duplicateWindow: 2m", "duplicateWindow: 30s", "duplicateWindow"},
		{"KEDA query", "kubernetes/optional/keda/scaledobject.yaml",
			"sum(max by (kind) (cgworker_consumer_pending", "sum(max by (kind) (cgworker_consumer_lag", "cgworker_consumer_pending"},
		{"KEDA summing replicas", "kubernetes/optional/keda/scaledobject.yaml",
			"sum(max by (kind) (cgworker_consumer_pending", "sum(sum by (kind) (cgworker_consumer_pending", "max by (kind)"},
		{"KEDA cooldown", "kubernetes/optional/keda/scaledobject.yaml", "  pollingInterval: 15\n", "  pollingInterval: 15\n  cooldownPeriod: 300\n", "cooldownPeriod"},
		{"KEDA keeps spec.replicas", "kubernetes/optional/keda/kustomization.yaml", "path: /spec/replicas", "path: /spec/paused", "/spec/replicas"},
		{"KEDA without nameReference", "kubernetes/optional/keda/kustomizeconfig.yaml", "path: spec/scaleTargetRef/name", "path: spec/scaleTargetRef/kind", "nameReference"},
		{"NACK consumer deletable", "kubernetes/optional/nack/consumers.yaml", "  preventDelete: true\n", "", "preventDelete"},
		{"NACK bucket deletable", "kubernetes/optional/nack/keyvalue.yaml", "  preventDelete: true\n", "", "preventDelete"},
		{"rule without runbook", "prometheus/cgworker-rules.yaml",
			"          runbook: https://github.com/cgworker/cgworker/blob/main/README.md#cgworkerlaggrowing\n", "", "no runbook"},
		{"runbook to no README section", "prometheus/cgworker-rules.yaml", "README.md#cgworkerlaggrowing", "README.md#lag", "#lag"},
		{"rule without summary", "prometheus/cgworker-rules.yaml",
			"          summary: \"The {{ $labels.kind }} backlog has kept growing for 15 minutes\"\n", "", "no summary"},
		{"PromQL syntax", "prometheus/cgworker-rules.yaml", "expr: cgworker_ready == 0", "expr: cgworker_ready == == 0", "PromQL"},
		{"rules summing consumers", "prometheus/cgworker-rules.yaml",
			"sum by (namespace, job) (max by (namespace, job, kind) (cgworker_consumer_pending))", "sum by (namespace, job) (cgworker_consumer_pending)", "never sum"},
		{"PrometheusRule out of step", "kubernetes/optional/prometheusrule/prometheusrule.yaml", "for: 15m", "for: 20m", "differ"},
		{"dashboard panel without description", "grafana/cgworker.json",
			`"description": "Resident memory per replica.`, `"description": "", "x": "`, "no description"},
		{"dashboard summing consumers", "grafana/cgworker.json",
			`max by (kind) (cgworker_consumer_ack_pending`, `sum by (kind) (cgworker_consumer_ack_pending`, "never sum"},
		{"dashboard without datasource variable", "grafana/cgworker.json", `"type": "datasource"`, `"type": "custom"`, "datasource variable"},
		{"dashboard query", "grafana/cgworker.json", `go_goroutines{`, `go_goroutines{{`, "PromQL"},
		{"dashboard ConfigMap out of step", "kubernetes/optional/grafana-dashboard/cgworker.json", `"uid": "cgworker"`, `"uid": "cgworker2"`, "differs"},
		{"dashboard ConfigMap label", "kubernetes/optional/grafana-dashboard/kustomization.yaml", `        grafana_dashboard: "1"`, `        grafana_dashboard: "yes"`, "grafana_dashboard"},
		{"second image build", "compose.yaml", "    image: ghcr.io/cgworker/cgworker:dev\n    pull_policy: never\n",
			"    build:\n      context: ..\n      dockerfile: deploy/Dockerfile\n    image: ghcr.io/cgworker/cgworker:dev\n    pull_policy: never\n", "one service only"},
		{"worker health check", "compose.yaml", `test: ["CMD", "/cgworker", "healthcheck"]`, `test: ["CMD", "/cgworker", "ready"]`, `"ready"`},
		{"worker health check with a shell", "compose.yaml", `test: ["CMD", "/cgworker", "healthcheck"]`, `test: ["CMD-SHELL", "wget -q localhost:8080/readyz"]`, "no shell"},
		{"Prometheus scrape port", "prometheus/prometheus.yaml", "port: 8080", "port: 9100", "9100"},
		{"Prometheus without rules", "prometheus/prometheus.yaml", "  - /etc/prometheus/cgworker-rules.yaml\n", "  - /etc/prometheus/other.yaml\n", "rule file"},
		{"Prometheus misses the workers", "prometheus/prometheus.yaml", `names: ["worker"]`, `names: ["workers"]`, "does not scrape"},
		{"Grafana not read-only", "compose.yaml", "GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer", "GF_AUTH_ANONYMOUS_ORG_ROLE: Admin", "read-only"},
		{"Grafana data source", "grafana/provisioning/datasources/prometheus.yaml", "url: http://prometheus:9090", "url: http://prom:9090", "compose Prometheus"},
		{"Grafana dashboard folder", "grafana/provisioning/dashboards/cgworker.yaml", "path: /var/lib/grafana/dashboards", "path: /dashboards", "cgworker.json"},
		{"old distroless", "Dockerfile", "static-debian13:nonroot", "static-debian12:nonroot", "debian13"},
		{"NATS payload", "nats/nats.conf", "max_payload: 8388608", "max_payload: 1048576", "max_payload"},
		{"Dockerfile command", "Dockerfile", `CMD ["run"]`, `CMD ["serve"]`, `"serve"`},
		{"Dockerfile port", "Dockerfile", "EXPOSE 8080", "EXPOSE 9090", "EXPOSE"},
		{"Dockerfile ldflags", "Dockerfile", "-X main.commit=${COMMIT}", "-X main.revision=${COMMIT}", "main.commit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Named deploy, as compose's build context (..) expects.
			dir := filepath.Join(t.TempDir(), "deploy")
			copyTree(t, deployDir, dir)
			file := filepath.Join(dir, filepath.FromSlash(tc.file))
			var text string
			if tc.old != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tc.old) {
					t.Fatalf("%s does not contain %q: update this case", tc.file, tc.old)
				}
				text = strings.Replace(string(b), tc.old, tc.new, 1)
			} else {
				b, _ := os.ReadFile(file) // a new file, or an addition
				text = string(b) + tc.new
			}
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := checkDeploy(dir, bin)
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", tc.want, strings.Join(problems, "\n"))
		})
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deployChecker collects the problems of one deploy folder.
type deployChecker struct {
	root     string
	bin      *binaryFacts
	problems []string
	names    queue.Names
	yamls    []*deployYAML
	objects  map[string]*k8sObject  // "Kind/name"
	images   map[string][]string    // cgworker image repository -> where
	pods     []*cgPod               // pod templates running cgworker
	services map[string]*yamlNode   // Service name -> document
	emulator map[string]emulatorRun // compose service -> its emulator
	// composeRuns counts compose services running `cgworker run`.
	composeRuns int
	// metricRefs: metric name -> where a query names it (rules, dashboard,
	// KEDA), for TestMetricsExist.
	metricRefs map[string][]string
	// dashboardConfigMaps counts ConfigMaps carrying the dashboard.
	dashboardConfigMaps int
	jsons               map[string][]byte // .json files by path
}

type deployYAML struct {
	rel  string // slash path inside root
	docs []*yamlNode
}

type k8sObject struct {
	file string
	doc  *yamlNode
}

// cgPod is a pod template running `cgworker run`, for the checks of the
// objects that point at it.
type cgPod struct {
	labels    map[string]string
	portNames map[string]string // container port name -> number
	ports     []string
	env       map[string]string // resolved environment of the container
}

type emulatorRun struct {
	addr string
	opts emulator.Options
}

// checkDeploy returns the problems of the deploy folder root.
func checkDeploy(root string, bin *binaryFacts) []string {
	c := newDeployChecker(root, bin)
	c.run()
	return c.problems
}

func newDeployChecker(root string, bin *binaryFacts) *deployChecker {
	return &deployChecker{
		root:     root,
		bin:      bin,
		names:    queue.NewNames("cg"),
		objects:  map[string]*k8sObject{},
		images:   map[string][]string{},
		services: map[string]*yamlNode{},
		emulator: map[string]emulatorRun{},
		jsons:    map[string][]byte{},
	}
}

func (c *deployChecker) errorf(file string, line int, format string, args ...any) {
	where := "deploy/" + file
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	c.problems = append(c.problems, where+": "+fmt.Sprintf(format, args...))
}

func (c *deployChecker) run() {
	var dockerfiles []string
	err := filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(c.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".go") {
			return nil // this test itself
		}
		c.scanNames(rel, string(b))
		switch base := path.Base(rel); {
		case strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"):
			docs, err := parseYAML(string(b))
			if err != nil {
				c.errorf(rel, 0, "%v", err)
				return nil
			}
			c.yamls = append(c.yamls, &deployYAML{rel: rel, docs: docs})
		case strings.HasSuffix(base, ".json"):
			c.jsons[rel] = b
			if strings.HasPrefix(rel, "grafana/") {
				c.checkDashboard(rel, b)
			}
		case base == "Dockerfile" || strings.HasPrefix(base, "Dockerfile."):
			dockerfiles = append(dockerfiles, rel)
		case strings.HasPrefix(rel, "nats/") && strings.HasSuffix(base, ".conf"):
			c.checkNATSConf(rel, p)
		}
		return nil
	})
	if err != nil {
		c.errorf("", 0, "%v", err)
		return
	}
	if len(dockerfiles) == 0 {
		c.errorf("Dockerfile", 0, "missing")
	}

	// Index the Kubernetes objects first: containers refer to ConfigMaps and
	// Secrets, Services to pods, and so on.
	for _, f := range c.yamls {
		for _, doc := range f.docs {
			kind, name := doc.get("kind").str(), doc.get("metadata", "name").str()
			if strings.HasPrefix(doc.get("apiVersion").str(), "kustomize.config.k8s.io/") {
				for _, gen := range c.generatedConfigMaps(f.rel, doc) {
					c.addObject(gen.file, "ConfigMap/"+gen.doc.get("metadata", "name").str(), gen)
				}
				continue
			}
			if kind == "" {
				continue
			}
			c.addObject(f.rel, kind+"/"+name, &k8sObject{file: f.rel, doc: doc})
			if kind == "Service" {
				c.services[name] = doc
			}
		}
	}
	for _, f := range c.yamls {
		for _, doc := range f.docs {
			if t := doc.get("spec", "template"); t != nil && doc.get("spec", "template", "spec", "containers") != nil {
				c.checkPodTemplate(f.rel, doc, t)
			}
			if doc.get("services") != nil && doc.get("kind") == nil {
				c.checkCompose(f.rel, doc)
			}
		}
	}
	for _, f := range c.yamls {
		for _, doc := range f.docs {
			c.checkObject(f.rel, doc)
		}
	}
	for _, rel := range dockerfiles {
		c.checkDockerfile(rel)
	}
	c.checkImages()
	c.checkRuleCopies()
	c.checkDashboardCopies(c.jsons)
}

func (c *deployChecker) addObject(rel, key string, obj *k8sObject) {
	if prev, dup := c.objects[key]; dup {
		c.errorf(rel, obj.doc.line, "%s is also defined in %s", key, prev.file)
	}
	c.objects[key] = obj
}

// knownEnv reports whether the binary reads the variable name: a setting,
// an OpenTelemetry SDK variable, or one the Go runtime reads.
func (c *deployChecker) knownEnv(name string) bool {
	_, setting := c.bin.settings[name]
	return setting || strings.HasPrefix(name, "OTEL_") || goRuntimeEnv[name]
}

var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

func (c *deployChecker) checkEnvName(file string, line int, name string) {
	if !c.knownEnv(name) {
		c.errorf(file, line, "%s is not a cgworker setting (cgworker run -h), an OTEL_* variable or a Go runtime variable", name)
	}
}

var cgToken = regexp.MustCompile(`\bCG_[A-Z0-9_]*[A-Z0-9]\b`)

// scanNames checks every CG_* word of every file, comments and prose
// included: each must be a setting or a stream or bucket name.
func (c *deployChecker) scanNames(rel, text string) {
	known := map[string]bool{}
	// Every stream and bucket name queue.Names gives (EventsStream,
	// DLQStream, SyncBucket, ...), found by reflection so that a name added
	// there is known here without an edit.
	names := reflect.ValueOf(c.names)
	for i := range names.NumMethod() {
		m := names.Method(i)
		if m.Type().NumIn() == 0 && m.Type().NumOut() == 1 && m.Type().Out(0).Kind() == reflect.String {
			if n := m.Call(nil)[0].String(); n == strings.ToUpper(n) {
				known[n] = true
			}
		}
	}
	for env := range c.bin.settings {
		known[env] = true
	}
	for i, line := range strings.Split(text, "\n") {
		for _, w := range cgToken.FindAllString(line, -1) {
			if !known[w] {
				c.errorf(rel, i+1, "%s is neither a cgworker setting (cgworker run -h) nor a stream or bucket name", w)
			}
		}
	}
}

func (c *deployChecker) noteImage(file string, line int, ref string) {
	if repo, ok := cgImageRepo(ref); ok {
		c.images[repo] = append(c.images[repo], fmt.Sprintf("deploy/%s:%d", file, line))
	}
}

// cgImageRepo is the repository of a cgworker image reference (tag and
// digest removed); ok is false for other images.
func cgImageRepo(ref string) (repo string, ok bool) {
	repo, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return repo, repo != "" && path.Base(repo) == "cgworker"
}

func (c *deployChecker) checkImages() {
	switch len(c.images) {
	case 0:
		c.errorf("", 0, "no cgworker image found in any file")
	case 1:
	default:
		var all []string
		for repo, where := range c.images {
			all = append(all, fmt.Sprintf("%s (%s)", repo, strings.Join(where, ", ")))
		}
		sort.Strings(all)
		c.errorf("", 0, "the cgworker image is named differently across files: %s", strings.Join(all, "; "))
	}
}

// checkArgs checks a cgworker command line (without the binary): an
// existing command and, for run and emulator, flags it accepts.
func (c *deployChecker) checkArgs(file string, line int, args []string) (cmd string, emu *emulatorRun) {
	if len(args) == 0 {
		c.errorf(file, line, "no cgworker command")
		return "", nil
	}
	names := c.bin.commands
	if !slices.Contains(names, args[0]) {
		c.errorf(file, line, "%q is not a cgworker command (%s)", args[0], strings.Join(names, ", "))
		return "", nil
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts emulator.Options
	var addr *string
	switch args[0] {
	case "emulator":
		addr = fs.String("addr", "127.0.0.1:8081", "")
		emulator.RegisterFlags(fs, &opts)
	case "run":
		for name, boolean := range c.bin.runFlags {
			if boolean {
				fs.Bool(name, false, "")
			} else {
				fs.String(name, "", "")
			}
		}
	default:
		return args[0], nil
	}
	if err := fs.Parse(args[1:]); err != nil {
		c.errorf(file, line, "cgworker %s: %v", args[0], err)
		return args[0], nil
	}
	if fs.NArg() > 0 {
		c.errorf(file, line, "cgworker %s takes no arguments, got %q", args[0], fs.Args())
		return args[0], nil
	}
	if addr == nil {
		return args[0], nil
	}
	if err := opts.Validate(); err != nil {
		c.errorf(file, line, "cgworker emulator: %v", err)
	}
	return args[0], &emulatorRun{addr: *addr, opts: opts}
}

// httpPort is the port of /healthz, /readyz and /metrics for an environment.
func (c *deployChecker) httpPort(env map[string]string) string {
	addr, ok := env["CG_HTTP_ADDR"]
	if !ok {
		addr = c.bin.settings["CG_HTTP_ADDR"]
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// settingDuration is a duration setting from env, else its default.
func (c *deployChecker) settingDuration(env map[string]string, name string) time.Duration {
	v, ok := env[name]
	if !ok {
		v = c.bin.settings[name]
	}
	d, _ := time.ParseDuration(v)
	return d
}

// ---- compose ----

func (c *deployChecker) checkCompose(rel string, doc *yamlNode) {
	services := doc.get("services")
	dir := path.Dir(rel)
	type runService struct {
		name string
		node *yamlNode
		env  map[string]string
		line map[string]int
	}
	var runs []runService
	builders := 0
	for _, name := range services.keys {
		s := services.m[name]
		image := s.get("image")
		build := s.get("build")
		isCG := build != nil
		if image != nil {
			c.noteImage(rel, image.line, image.str())
			if _, ok := cgImageRepo(image.str()); ok {
				isCG = true
			}
		}
		if build != nil {
			builders++
			if builders > 1 {
				c.errorf(rel, build.line, "service %s builds an image too: build it in one service only (parallel builds of one tag fail)", name)
			}
			ctx := build.get("context").str()
			if build.kind == yamlScalar {
				ctx = build.str()
			}
			dockerfile := build.get("dockerfile").str()
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			c.checkExists(rel, build.line, path.Join(dir, ctx, dockerfile), "build.dockerfile")
		}
		for _, v := range s.get("volumes").list() {
			src, _, _ := strings.Cut(v.str(), ":")
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
				c.checkExists(rel, v.line, path.Join(dir, src), "volume source")
			}
		}
		deps := s.get("depends_on")
		for _, d := range append(deps.strs(), deps.keysOrNil()...) {
			if services.get(d) == nil {
				c.errorf(rel, deps.line, "service %s depends on %q, which is not a service", name, d)
			}
		}
		if !isCG {
			continue
		}

		env, lines := c.composeEnv(rel, s.get("environment"))
		var args []string
		switch cmd := s.get("command"); {
		case cmd == nil:
			args = []string{"run"} // the image's CMD
		case cmd.kind == yamlScalar:
			args = strings.Fields(cmd.str())
		default:
			args = cmd.strs()
		}
		command, emu := c.checkArgs(rel, s.get("command").lineOr(s.line), args)
		ports := composeContainerPorts(s.get("ports"))
		switch command {
		case "emulator":
			if emu == nil {
				break // already reported
			}
			c.emulator[name] = *emu
			if _, port, _ := net.SplitHostPort(emu.addr); len(ports) > 0 && !slices.Contains(ports, port) {
				c.errorf(rel, s.get("ports").line, "service %s: the emulator listens on %s, not on a published port %v", name, port, ports)
			}
		case "run":
			runs = append(runs, runService{name: name, node: s, env: env, line: lines})
			c.composeRuns++
			c.checkComposeHealthcheck(rel, name, s)
			if port := c.httpPort(env); len(ports) > 0 && !slices.Contains(ports, port) {
				c.errorf(rel, s.get("ports").line, "service %s: CG_HTTP_ADDR port %s is not among its ports %v", name, port, ports)
			}
			grace := s.get("stop_grace_period")
			g, _ := time.ParseDuration(grace.str())
			if grace == nil {
				g = 10 * time.Second // compose's default
			}
			if shut := c.settingDuration(env, "CG_SHUTDOWN_TIMEOUT"); g <= shut {
				c.errorf(rel, grace.lineOr(s.line), "service %s: stop_grace_period %v must be longer than CG_SHUTDOWN_TIMEOUT %v", name, g, shut)
			}
		}
	}

	runPorts := map[string]string{}
	for _, r := range runs {
		runPorts[r.name] = c.httpPort(r.env)
	}
	prometheus, grafana := 0, 0
	for _, name := range services.keys {
		s := services.m[name]
		switch image := s.get("image").str(); {
		case strings.HasPrefix(image, "prom/prometheus"):
			prometheus++
			c.checkComposePrometheus(rel, name, s, runPorts)
		case strings.HasPrefix(image, "grafana/grafana"):
			grafana++
			env := map[string]string{}
			for _, k := range s.get("environment").keysOrNil() {
				env[k] = s.get("environment", k).str()
			}
			c.checkComposeGrafana(rel, name, s, env, services)
		}
	}
	if prometheus != 1 || grafana != 1 {
		c.errorf(rel, doc.line, "want one Prometheus and one Grafana service, found %d and %d", prometheus, grafana)
	}

	// Worker -> other services: hosts that exist, and the emulator's
	// credentials, configurations and port.
	urlEnv := []string{"NATS_URL", "CG_AUTH_URL", "CG_IMPORTS_URL", "CG_API_URL",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"}
	for _, r := range runs {
		for _, name := range urlEnv {
			for _, raw := range strings.Split(r.env[name], ",") {
				if raw = strings.TrimSpace(raw); raw == "" {
					continue
				}
				u, err := url.Parse(raw)
				if err != nil || u.Hostname() == "" {
					c.errorf(rel, r.line[name], "service %s: %s is not a URL: %q", r.name, name, raw)
					continue
				}
				host := u.Hostname()
				if host != "localhost" && net.ParseIP(host) == nil && !strings.Contains(host, ".") && services.get(host) == nil {
					c.errorf(rel, r.line[name], "service %s: %s names host %q, which is not a service", r.name, name, host)
				}
				emu, ok := c.emulator[host]
				if !ok || !strings.HasPrefix(name, "CG_") {
					continue
				}
				if _, port, _ := net.SplitHostPort(emu.addr); u.Port() != port {
					c.errorf(rel, r.line[name], "service %s: %s uses port %s; the emulator listens on %s", r.name, name, u.Port(), port)
				}
			}
		}
		emu, ok := c.emulator[hostOf(r.env["CG_AUTH_URL"])]
		if !ok {
			continue
		}
		if r.env["CG_CLIENT_ID"] != emu.opts.ClientID {
			c.errorf(rel, r.line["CG_CLIENT_ID"], "service %s: CG_CLIENT_ID differs from the emulator's --client-id", r.name)
		}
		if r.env["CG_CLIENT_SECRET"] != emu.opts.ClientSecret {
			c.errorf(rel, r.line["CG_CLIENT_SECRET"], "service %s: CG_CLIENT_SECRET differs from the emulator's --client-secret", r.name)
		}
		var refs []string
		for _, conf := range emu.opts.Configurations {
			ref, _, _ := strings.Cut(conf, "=")
			refs = append(refs, ref)
		}
		for _, name := range []string{"CG_ACCOUNT_CONFIGURATION", "CG_CONTACT_CONFIGURATION"} {
			if v, set := r.env[name]; set && !slices.Contains(refs, v) {
				c.errorf(rel, r.line[name], "service %s: %s %q is not among the emulator's --configurations %v", r.name, name, v, refs)
			}
		}
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// composeEnv reads `environment:` in either form (mapping or KEY=VALUE
// list) and checks every name.
func (c *deployChecker) composeEnv(rel string, n *yamlNode) (env map[string]string, lines map[string]int) {
	env, lines = map[string]string{}, map[string]int{}
	add := func(name, value string, line int) {
		c.checkEnvName(rel, line, name)
		env[name], lines[name] = value, line
	}
	if n == nil {
		return env, lines
	}
	switch n.kind {
	case yamlMap:
		for _, k := range n.keys {
			add(k, n.m[k].str(), n.m[k].line)
		}
	case yamlSeq:
		for _, it := range n.items {
			k, v, _ := strings.Cut(it.str(), "=")
			add(k, v, it.line)
		}
	}
	return env, lines
}

// composeContainerPorts is the container side of `ports:` entries
// ("8080", "8081:8081", "127.0.0.1:4222:4222/tcp").
func composeContainerPorts(n *yamlNode) []string {
	var out []string
	for _, p := range n.strs() {
		p, _, _ = strings.Cut(p, "/")
		out = append(out, p[strings.LastIndexByte(p, ':')+1:])
	}
	return out
}

func (c *deployChecker) checkExists(rel string, line int, p, what string) {
	if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p))); err != nil {
		c.errorf(rel, line, "%s %s does not exist", what, p)
	}
}

// ---- Kubernetes pods ----

func (c *deployChecker) checkPodTemplate(rel string, doc, tmpl *yamlNode) {
	spec := tmpl.get("spec")
	labels := stringMap(tmpl.get("metadata", "labels"))
	if sel := stringMap(doc.get("spec", "selector", "matchLabels")); len(sel) > 0 && !subset(sel, labels) {
		c.errorf(rel, doc.get("spec", "selector").line, "selector does not match the pod template's labels")
	}
	var containers []*yamlNode
	containers = append(containers, spec.get("initContainers").list()...)
	containers = append(containers, spec.get("containers").list()...)
	for _, ctr := range containers {
		image := ctr.get("image")
		c.noteImage(rel, image.lineOr(ctr.line), image.str())
		c.checkPinnedImage(rel, image.lineOr(ctr.line), image.str())
		if _, ok := cgImageRepo(image.str()); !ok {
			continue
		}
		env, envLine := c.containerEnv(rel, ctr)

		args := ctr.get("args").strs()
		if cmd := ctr.get("command"); cmd != nil {
			if all := cmd.strs(); len(all) == 0 || all[0] != "/cgworker" {
				c.errorf(rel, cmd.line, "command must start with /cgworker (the image's ENTRYPOINT)")
			} else {
				args = append(all[1:], args...)
			}
		} else if ctr.get("args") == nil {
			args = []string{"run"} // the image's CMD
		}
		command, _ := c.checkArgs(rel, ctr.get("args").lineOr(ctr.line), args)
		if command != "run" {
			continue
		}

		port := c.httpPort(env)
		pod := &cgPod{labels: labels, portNames: map[string]string{}, env: env}
		for _, p := range ctr.get("ports").list() {
			num := p.get("containerPort").str()
			pod.ports = append(pod.ports, num)
			if name := p.get("name").str(); name != "" {
				pod.portNames[name] = num
			}
		}
		if !slices.Contains(pod.ports, port) {
			c.errorf(rel, ctr.get("ports").lineOr(ctr.line), "no containerPort %s (the port of CG_HTTP_ADDR)", port)
		}
		c.pods = append(c.pods, pod)

		for _, probe := range []struct {
			key   string
			paths []string
			need  bool
		}{
			{"readinessProbe", []string{"/readyz"}, true},
			{"livenessProbe", []string{"/healthz"}, true},
			{"startupProbe", []string{"/healthz", "/readyz"}, false},
		} {
			n := ctr.get(probe.key)
			if n == nil {
				if probe.need {
					c.errorf(rel, ctr.line, "container %s has no %s", ctr.get("name").str(), probe.key)
				}
				continue
			}
			get := n.get("httpGet")
			if p := get.get("path").str(); !slices.Contains(probe.paths, p) {
				c.errorf(rel, get.lineOr(n.line), "%s path %q, want %s", probe.key, p, strings.Join(probe.paths, " or "))
			}
			pp := get.get("port").str()
			if num, named := pod.portNames[pp]; named {
				pp = num
			}
			if pp != port {
				c.errorf(rel, get.lineOr(n.line), "%s port %s, want %s (the port of CG_HTTP_ADDR)", probe.key, pp, port)
			}
		}

		ann := tmpl.get("metadata", "annotations")
		if p := ann.get("prometheus.io/port"); p != nil && p.str() != port {
			c.errorf(rel, p.line, "prometheus.io/port %s, want %s (the port of CG_HTTP_ADDR)", p.str(), port)
		}
		if p := ann.get("prometheus.io/path"); p != nil && p.str() != "/metrics" {
			c.errorf(rel, p.line, "prometheus.io/path %s, want /metrics", p.str())
		}

		grace := 30 * time.Second // Kubernetes' default
		if g := spec.get("terminationGracePeriodSeconds"); g != nil {
			n, _ := strconv.Atoi(g.str())
			grace = time.Duration(n) * time.Second
		}
		if shut := c.settingDuration(env, "CG_SHUTDOWN_TIMEOUT"); grace <= shut {
			c.errorf(rel, spec.get("terminationGracePeriodSeconds").lineOr(spec.line),
				"terminationGracePeriodSeconds %v must be longer than CG_SHUTDOWN_TIMEOUT %v", grace, shut)
		}

		if v, ok := env["GOMEMLIMIT"]; ok {
			limit := ctr.get("resources", "limits", "memory")
			gm, err1 := parseBytes(v)
			lm, err2 := parseBytes(limit.str())
			if err1 != nil || err2 != nil || gm >= lm {
				c.errorf(rel, envLine["GOMEMLIMIT"], "GOMEMLIMIT %s must be below resources.limits.memory %q", v, limit.str())
			}
		}

		sc, podSC := ctr.get("securityContext"), spec.get("securityContext")
		for _, want := range []struct{ key, value string }{
			{"readOnlyRootFilesystem", "true"}, {"allowPrivilegeEscalation", "false"},
		} {
			if got := sc.get(want.key).str(); got != want.value {
				c.errorf(rel, sc.lineOr(ctr.line), "securityContext.%s is %q, want %s", want.key, got, want.value)
			}
		}
		if !slices.Contains(sc.get("capabilities", "drop").strs(), "ALL") {
			c.errorf(rel, sc.lineOr(ctr.line), "securityContext.capabilities.drop must contain ALL")
		}
		if sc.get("runAsNonRoot").str() != "true" && podSC.get("runAsNonRoot").str() != "true" {
			c.errorf(rel, sc.lineOr(ctr.line), "runAsNonRoot must be true")
		}

		c.checkMountedFiles(rel, spec, ctr, env, envLine)
	}
}

// containerEnv resolves a container's environment (envFrom, then env, which
// wins) and checks every name and reference.
func (c *deployChecker) containerEnv(rel string, ctr *yamlNode) (env map[string]string, lines map[string]int) {
	env, lines = map[string]string{}, map[string]int{}
	for _, from := range ctr.get("envFrom").list() {
		prefix := from.get("prefix").str()
		for _, kind := range []string{"ConfigMap", "Secret"} {
			ref := from.get(strings.ToLower(kind[:1]) + kind[1:] + "Ref")
			if ref == nil {
				continue
			}
			obj := c.objects[kind+"/"+ref.get("name").str()]
			if obj == nil {
				if ref.get("optional").str() != "true" {
					c.errorf(rel, ref.line, "envFrom names %s %q, which no deploy file defines", kind, ref.get("name").str())
				}
				continue
			}
			for _, section := range []string{"data", "stringData"} {
				data := obj.doc.get(section)
				for _, k := range data.keysOrNil() {
					c.checkEnvName(obj.file, data.m[k].line, prefix+k)
					env[prefix+k] = data.m[k].str()
					lines[prefix+k] = data.m[k].line
				}
			}
		}
	}
	for _, e := range ctr.get("env").list() {
		name := e.get("name").str()
		c.checkEnvName(rel, e.line, name)
		lines[name] = e.line
		if v := e.get("value"); v != nil {
			env[name] = v.str()
		} else {
			env[name] = "" // from elsewhere; set, value unknown here
		}
		for _, kind := range []string{"ConfigMap", "Secret"} {
			ref := e.get("valueFrom", strings.ToLower(kind[:1])+kind[1:]+"KeyRef")
			if ref != nil {
				c.checkKey(rel, ref.line, kind, ref.get("name").str(), ref.get("key").str(), ref.get("optional").str() == "true")
			}
		}
	}
	return env, lines
}

// checkKey reports a reference to a key that the named ConfigMap or Secret
// (when defined in deploy/) does not have.
func (c *deployChecker) checkKey(rel string, line int, kind, name, key string, optional bool) {
	obj := c.objects[kind+"/"+name]
	if obj == nil {
		if !optional {
			c.errorf(rel, line, "%s %q is not defined in deploy/", kind, name)
		}
		return
	}
	if obj.doc.get("data", key) == nil && obj.doc.get("stringData", key) == nil && !optional {
		c.errorf(rel, line, "%s %q has no key %q", kind, name, key)
	}
}

// checkMountedFiles checks that file settings point into a mounted volume,
// and into a key of the Secret or ConfigMap behind it.
func (c *deployChecker) checkMountedFiles(rel string, spec, ctr *yamlNode, env map[string]string, lines map[string]int) {
	volumes := map[string]*yamlNode{}
	for _, v := range spec.get("volumes").list() {
		volumes[v.get("name").str()] = v
	}
	for _, name := range []string{"CG_CLIENT_SECRET_FILE", "NATS_CREDS", "NATS_NKEY", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY"} {
		file := env[name]
		if !strings.HasPrefix(file, "/") {
			continue
		}
		var mount *yamlNode
		for _, m := range ctr.get("volumeMounts").list() {
			mp := strings.TrimSuffix(m.get("mountPath").str(), "/")
			if strings.HasPrefix(file, mp+"/") && (mount == nil || len(mp) > len(mount.get("mountPath").str())) {
				mount = m
			}
		}
		if mount == nil {
			c.errorf(rel, lines[name], "%s %s is not inside any volumeMount", name, file)
			continue
		}
		if volumes[mount.get("name").str()] == nil {
			c.errorf(rel, mount.line, "volumeMount %q has no volume", mount.get("name").str())
			continue
		}
		vol := volumes[mount.get("name").str()]
		inside := strings.TrimPrefix(file, strings.TrimSuffix(mount.get("mountPath").str(), "/")+"/")
		for _, kind := range []string{"Secret", "ConfigMap"} {
			src := vol.get(strings.ToLower(kind))
			if src == nil {
				continue
			}
			objName := src.get("secretName").str()
			if kind == "ConfigMap" {
				objName = src.get("name").str()
			}
			key := inside
			if items := src.get("items").list(); items != nil {
				key = ""
				for _, it := range items {
					if it.get("path").str() == inside {
						key = it.get("key").str()
					}
				}
				if key == "" {
					c.errorf(rel, lines[name], "%s %s: volume %q does not project a file %q", name, file, mount.get("name").str(), inside)
					continue
				}
			}
			c.checkKey(rel, src.line, kind, objName, key, src.get("optional").str() == "true")
		}
	}
}

// ---- other Kubernetes objects, kustomize, collector ----

func (c *deployChecker) checkObject(rel string, doc *yamlNode) {
	kind := doc.get("kind").str()
	if strings.HasPrefix(doc.get("apiVersion").str(), "kustomize.config.k8s.io/") {
		c.checkKustomization(rel, doc)
		return
	}
	switch kind {
	case "Service":
		sel := stringMap(doc.get("spec", "selector"))
		pod := c.podFor(sel)
		if pod == nil {
			c.errorf(rel, doc.line, "Service %s selects no cgworker pod", doc.get("metadata", "name").str())
			return
		}
		for _, p := range doc.get("spec", "ports").list() {
			tp := p.get("targetPort").str()
			if tp == "" {
				tp = p.get("port").str()
			}
			if _, named := pod.portNames[tp]; !named && !slices.Contains(pod.ports, tp) {
				c.errorf(rel, p.line, "targetPort %s is not a port of the cgworker container", tp)
			}
		}
	case "PodDisruptionBudget":
		if c.podFor(stringMap(doc.get("spec", "selector", "matchLabels"))) == nil {
			c.errorf(rel, doc.line, "PodDisruptionBudget selects no cgworker pod")
		}
	case "ServiceMonitor":
		sel := stringMap(doc.get("spec", "selector", "matchLabels"))
		var svc *yamlNode
		for _, s := range c.services {
			if subset(sel, stringMap(s.get("metadata", "labels"))) {
				svc = s
			}
		}
		if svc == nil {
			c.errorf(rel, doc.line, "ServiceMonitor selects no Service of deploy/")
			return
		}
		var portNames []string
		for _, p := range svc.get("spec", "ports").list() {
			portNames = append(portNames, p.get("name").str())
		}
		for _, ep := range doc.get("spec", "endpoints").list() {
			if p := ep.get("port").str(); !slices.Contains(portNames, p) {
				c.errorf(rel, ep.line, "endpoint port %q is not a port name of Service %s", p, svc.get("metadata", "name").str())
			}
			if p := ep.get("path").str(); p != "" && p != "/metrics" {
				c.errorf(rel, ep.line, "endpoint path %q, want /metrics", p)
			}
		}
	case "ScaledObject":
		c.checkScaledObject(rel, doc)
	case "PrometheusRule":
		c.checkRuleGroups(rel, doc.get("spec", "groups"))
	case "Stream", "Consumer", "KeyValue":
		if strings.HasPrefix(doc.get("apiVersion").str(), "jetstream.nats.io/") {
			c.checkNACK(rel, kind, doc.get("spec"))
		}
	}
	if doc.get("receivers") != nil && doc.get("service", "pipelines") != nil {
		c.checkCollector(rel, doc)
	}
	if kind == "" && doc.get("groups") != nil {
		c.checkRuleGroups(rel, doc.get("groups"))
	}
}

// podFor is the cgworker pod template whose labels sel selects.
func (c *deployChecker) podFor(sel map[string]string) *cgPod {
	if len(sel) == 0 {
		return nil
	}
	for _, p := range c.pods {
		if subset(sel, p.labels) {
			return p
		}
	}
	return nil
}

// workerEnv is the environment of the Kubernetes worker, for the objects
// that must agree with it (ack wait).
func (c *deployChecker) workerEnv() map[string]string {
	if len(c.pods) == 0 {
		return map[string]string{}
	}
	return c.pods[0].env
}

func (c *deployChecker) consumerKinds() map[string]schemas.Kind {
	out := map[string]schemas.Kind{}
	for _, k := range schemas.Kinds {
		out[c.names.Consumer(k)] = k
	}
	return out
}

func (c *deployChecker) checkScaledObject(rel string, doc *yamlNode) {
	target := doc.get("spec", "scaleTargetRef")
	kind := target.get("kind").str()
	if kind == "" {
		kind = "Deployment"
	}
	if c.objects[kind+"/"+target.get("name").str()] == nil {
		c.errorf(rel, target.lineOr(doc.line), "scaleTargetRef %s/%s is not defined in deploy/", kind, target.get("name").str())
	}
	consumers := c.consumerKinds()
	triggers := doc.get("spec", "triggers").list()
	if len(triggers) == 0 {
		c.errorf(rel, doc.line, "ScaledObject has no triggers")
	}
	for _, tr := range triggers {
		md := tr.get("metadata")
		switch tr.get("type").str() {
		case "prometheus":
			// The backlog of the consumed kinds only: cgworker_consumer_pending
			// exists for them alone (README, "Deployment").
			c.checkPromQL(rel, md.get("query").lineOr(tr.line), md.get("query").str())
			if !strings.Contains(md.get("query").str(), "cgworker_consumer_pending") {
				c.errorf(rel, md.get("query").lineOr(tr.line), "the prometheus trigger's query must scale on cgworker_consumer_pending")
			}
			if md.get("serverAddress").str() == "" {
				c.errorf(rel, md.lineOr(tr.line), "serverAddress is missing")
			}
			if n, err := strconv.ParseFloat(md.get("threshold").str(), 64); err != nil || n <= 0 {
				c.errorf(rel, md.lineOr(tr.line), "threshold must be a positive number")
			}
		case "nats-jetstream":
			// Allowed, but a trigger for a kind that is not consumed reads the
			// stream's last sequence as lag: deploy/README.md says why the
			// component uses Prometheus.
			if s := md.get("stream").str(); s != c.names.EventsStream() {
				c.errorf(rel, md.get("stream").lineOr(tr.line), "stream %q, want %s", s, c.names.EventsStream())
			}
			if _, ok := consumers[md.get("consumer").str()]; !ok {
				c.errorf(rel, md.get("consumer").lineOr(tr.line), "consumer %q is not one of the worker's consumers", md.get("consumer").str())
			}
			if n, err := strconv.Atoi(md.get("lagThreshold").str()); err != nil || n <= 0 {
				c.errorf(rel, md.lineOr(tr.line), "lagThreshold must be a positive whole number")
			}
		}
	}
	// cooldownPeriod only governs scaling to zero.
	if cd := doc.get("spec", "cooldownPeriod"); cd != nil && doc.get("spec", "minReplicaCount").str() != "0" {
		c.errorf(rel, cd.line, "cooldownPeriod does nothing unless minReplicaCount is 0: drop it")
	}
	c.checkScaledObjectComponent(rel)
}

func (c *deployChecker) checkNACK(rel, kind string, spec *yamlNode) {
	ackWait := c.settingDuration(c.workerEnv(), "CG_ACK_WAIT")
	// Deleting the Kubernetes object would delete the consumer (a new one
	// replays the whole stream), the bucket (the sync's cursor) or the data.
	if spec.get("preventDelete").str() != "true" {
		c.errorf(rel, spec.lineOr(0), "%s: preventDelete must be true", kind)
	}
	switch kind {
	case "Stream":
		want := map[string]string{
			c.names.EventsStream():    c.names.EventsWildcard(),
			c.names.DLQStream():       c.names.DLQWildcard(),
			c.names.ResponsesStream(): c.names.ResponsesSubject(),
		}
		name := spec.get("name").str()
		subject, ok := want[name]
		if !ok {
			c.errorf(rel, spec.line, "stream %q is not one of the worker's streams", name)
			return
		}
		if got := spec.get("subjects").strs(); len(got) != 1 || got[0] != subject {
			c.errorf(rel, spec.get("subjects").lineOr(spec.line), "stream %s subjects %v, want [%s]", name, got, subject)
		}
		if s := spec.get("storage").str(); s != "file" {
			c.errorf(rel, spec.line, "stream %s storage %q, want file", name, s)
		}
		if name != c.names.DLQStream() {
			return
		}
		if age := spec.get("maxAge").str(); age != "" && age != "0" && age != "0s" {
			c.errorf(rel, spec.get("maxAge").line, "stream %s maxAge %q: dead letters have no age limit", name, age)
		}
		dup, err := time.ParseDuration(spec.get("duplicateWindow").str())
		if err != nil || dup < 2*ackWait {
			c.errorf(rel, spec.get("duplicateWindow").lineOr(spec.line),
				"stream %s duplicateWindow %q must be at least twice the ack wait (%v)", name, spec.get("duplicateWindow").str(), ackWait)
		}
	case "Consumer":
		durable := spec.get("durableName").str()
		k, ok := c.consumerKinds()[durable]
		if !ok {
			c.errorf(rel, spec.line, "consumer %q is not one of the worker's consumers", durable)
			return
		}
		for _, want := range []struct{ key, value string }{
			{"streamName", c.names.EventsStream()},
			{"filterSubject", c.names.EventSubject(k)},
			{"ackPolicy", "explicit"},
			{"maxDeliver", "-1"},
		} {
			if got := spec.get(want.key).str(); got != want.value {
				c.errorf(rel, spec.get(want.key).lineOr(spec.line), "consumer %s %s %q, want %s", durable, want.key, got, want.value)
			}
		}
		if d, err := time.ParseDuration(spec.get("ackWait").str()); err != nil || d != ackWait {
			c.errorf(rel, spec.get("ackWait").lineOr(spec.line), "consumer %s ackWait %q, want the worker's CG_ACK_WAIT %v", durable, spec.get("ackWait").str(), ackWait)
		}
		for _, key := range []string{"inactiveThreshold", "deliverSubject"} {
			if n := spec.get(key); n != nil {
				c.errorf(rel, n.line, "consumer %s: %s must not be set (a durable pull consumer shared by all replicas)", durable, key)
			}
		}
	case "KeyValue":
		if b := spec.get("bucket").str(); b != c.names.SyncBucket() {
			c.errorf(rel, spec.line, "bucket %q, want %s", b, c.names.SyncBucket())
		}
	}
}

func (c *deployChecker) checkKustomization(rel string, doc *yamlNode) {
	dir := path.Dir(rel)
	listed := map[string]bool{}
	for _, key := range []string{"resources", "components", "configurations"} {
		for _, r := range doc.get(key).list() {
			listed[r.str()] = true
			if !strings.Contains(r.str(), "://") {
				c.checkExists(rel, r.line, path.Join(dir, r.str()), key+" entry")
			}
		}
	}
	for _, img := range doc.get("images").list() {
		c.noteImage(rel, img.line, img.get("name").str())
		if t := img.get("newTag"); t != nil {
			c.checkPinnedImage(rel, t.line, img.get("name").str()+":"+t.str())
		}
		if n := img.get("newName"); n != nil {
			c.noteImage(rel, n.line, n.str())
		}
	}
	generated := map[string]bool{}
	for _, key := range []string{"configMapGenerator", "secretGenerator"} {
		for _, g := range doc.get(key).list() {
			for _, src := range append(g.get("envs").strs(), g.get("files").strs()...) {
				_, file, _ := strings.Cut(src, "=") // key=file or file
				if file == "" {
					file = src
				}
				generated[file] = true
				c.checkExists(rel, g.line, path.Join(dir, file), key+" source")
			}
		}
	}
	// A manifest next to a kustomization that it does not list is never
	// applied: almost certainly forgotten.
	entries, err := os.ReadDir(filepath.Join(c.root, filepath.FromSlash(dir)))
	if err != nil {
		c.errorf(rel, 0, "%v", err)
		return
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == path.Base(rel) || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		if !listed[n] && !generated[n] {
			c.errorf(rel, doc.line, "%s is not listed in resources", path.Join(dir, n))
		}
	}
}

// checkCollector checks that the pipelines of an OpenTelemetry Collector
// configuration name components it defines.
func (c *deployChecker) checkCollector(rel string, doc *yamlNode) {
	pipelines := doc.get("service", "pipelines")
	for _, p := range pipelines.keys {
		for _, section := range []string{"receivers", "processors", "exporters"} {
			for _, it := range pipelines.m[p].get(section).list() {
				if doc.get(section, it.str()) == nil {
					c.errorf(rel, it.line, "pipeline %s uses %s %q, which is not defined", p, section, it.str())
				}
			}
		}
	}
}

// ---- NATS server configuration ----

func (c *deployChecker) checkNATSConf(rel, file string) {
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		c.errorf(rel, 0, "%v", err)
		return
	}
	if !opts.JetStream {
		c.errorf(rel, 0, "JetStream is not enabled")
	}
	// README, "Subjects, streams, consumers": 4 MiB or more leaves room for 2 MiB bodies and
	// dead-letter headers.
	if opts.MaxPayload < 4<<20 {
		c.errorf(rel, 0, "max_payload %d is below 4 MiB", opts.MaxPayload)
	}
	if opts.HTTPPort == 0 {
		c.errorf(rel, 0, "no monitoring port (http_port): health checks and KEDA need it")
	}
}

// ---- Dockerfile ----

type dockerInstruction struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(src string) []dockerInstruction {
	var out []dockerInstruction
	var cur *dockerInstruction
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // comments may sit inside a continued instruction
		}
		cont := strings.HasSuffix(trimmed, "\\")
		trimmed = strings.TrimSuffix(trimmed, "\\")
		if cur == nil {
			cmd, args, _ := strings.Cut(trimmed, " ")
			cur = &dockerInstruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args += " " + strings.TrimSpace(trimmed)
		}
		if !cont {
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

func (c *deployChecker) checkDockerfile(rel string) {
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		c.errorf(rel, 0, "%v", err)
		return
	}
	ins := parseDockerfile(string(b))
	final := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			final = i
		}
	}
	if final < 0 {
		c.errorf(rel, 0, "no FROM")
		return
	}
	// The distroless Debian 12 images are being deprecated; the static
	// nonroot image carries CA certificates and user 65532.
	if base := ins[final].args; !regexp.MustCompile(`distroless/static-debian(1[3-9]|[2-9]\d):nonroot`).MatchString(base) {
		c.errorf(rel, ins[final].line, "final stage FROM %s: want gcr.io/distroless/static-debian13:nonroot or later", base)
	}
	port := c.httpPort(nil)
	var exposed, built bool
	var entrypoint []string
	for i, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			for _, want := range []string{"-X main.version=", "-X main.commit=", "./cmd/cgworker"} {
				if !strings.Contains(in.args, want) {
					c.errorf(rel, in.line, "go build lacks %q", want)
				}
			}
		}
		if i < final {
			continue // the builder stage's environment is not the worker's
		}
		switch in.cmd {
		case "ENV":
			for _, name := range dockerEnvNames(in.args) {
				c.checkEnvName(rel, in.line, name)
			}
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				p, _, _ = strings.Cut(p, "/")
				exposed = exposed || p == port
			}
		case "USER":
			u, _, _ := strings.Cut(in.args, ":")
			if u == "root" || u == "0" {
				c.errorf(rel, in.line, "USER must not be root")
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil || len(entrypoint) != 1 || entrypoint[0] != "/cgworker" {
				c.errorf(rel, in.line, `ENTRYPOINT must be ["/cgworker"] (the manifests rely on it)`)
			}
		case "CMD":
			var args []string
			if err := json.Unmarshal([]byte(in.args), &args); err != nil {
				c.errorf(rel, in.line, "CMD must use the JSON form")
				continue
			}
			c.checkArgs(rel, in.line, args)
		}
	}
	if !built {
		c.errorf(rel, 0, "no RUN with go build")
	}
	if !exposed {
		c.errorf(rel, 0, "final stage does not EXPOSE %s (the port of CG_HTTP_ADDR)", port)
	}
}

// dockerEnvNames is the variable names of an ENV instruction (ENV K=V K2="a b"
// or the legacy ENV K V).
func dockerEnvNames(args string) []string {
	first, _, _ := strings.Cut(args, " ")
	if !strings.Contains(first, "=") {
		return []string{first}
	}
	var names []string
	var quote byte
	start := 0
	for i := 0; i <= len(args); i++ {
		if i < len(args) && (quote != 0 || args[i] != ' ') {
			switch {
			case quote != 0 && args[i] == quote:
				quote = 0
			case quote == 0 && (args[i] == '"' || args[i] == '\''):
				quote = args[i]
			}
			continue
		}
		if tok := args[start:i]; tok != "" {
			name, _, _ := strings.Cut(tok, "=")
			names = append(names, name)
		}
		start = i + 1
	}
	return names
}

// ---- small helpers ----

func stringMap(n *yamlNode) map[string]string {
	out := map[string]string{}
	for _, k := range n.keysOrNil() {
		out[k] = n.m[k].str()
	}
	return out
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

// parseBytes reads a Kubernetes quantity (256Mi, 1G) or a GOMEMLIMIT value
// (230MiB, 1GiB, 1000).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
