package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// The alert rules, the PrometheusRule copy, the Grafana dashboard and its
// ConfigMap copy, the compose stack's Prometheus and Grafana: checked here
// against each other, the README and the PromQL grammar. Which metrics the
// binary really serves is checked by TestMetricsExist, against a running
// worker.

// readmePath is the repository's README, where the runbooks live.
const readmePath = "../README.md"

// grafanaVars stand in for the dashboard's variables so its queries parse.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$sync_interval", "3600", "$job", ".*", "$namespace", ".*",
)

// checkPromQL parses expr with the Prometheus parser and records the
// metrics it names.
func (c *deployChecker) checkPromQL(rel string, line int, expr string) parser.Expr {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		c.errorf(rel, line, "PromQL %q: %v", expr, err)
		return nil
	}
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || vs.Name == "" {
			return nil
		}
		if c.metricRefs == nil {
			c.metricRefs = map[string][]string{}
		}
		c.metricRefs[vs.Name] = append(c.metricRefs[vs.Name], fmt.Sprintf("deploy/%s:%d", rel, line))
		// Every replica reports the same consumer gauges: summing them
		// multiplies the backlog by the replicas.
		if strings.HasPrefix(vs.Name, "cgworker_consumer_") && !maxByKind(path) {
			c.errorf(rel, line, "%s must be aggregated with max by (kind), never sum: %q", vs.Name, expr)
		}
		return nil
	})
	return e
}

// maxByKind reports whether the innermost aggregation around a selector is
// max by (kind, ...).
func maxByKind(path []parser.Node) bool {
	for i := len(path) - 1; i >= 0; i-- {
		if agg, ok := path[i].(*parser.AggregateExpr); ok {
			return agg.Op == parser.MAX && !agg.Without && slices.Contains(agg.Grouping, "kind")
		}
	}
	return false
}

// ---- alert rules ----

// checkRuleGroups checks the groups of a rules file or a PrometheusRule.
func (c *deployChecker) checkRuleGroups(rel string, groups *yamlNode) {
	anchors := readmeAnchors()
	alerts := 0
	for _, g := range groups.list() {
		for _, r := range g.get("rules").list() {
			name := r.get("alert").str()
			if name == "" {
				name = r.get("record").str()
			} else {
				alerts++
			}
			c.checkPromQL(rel, r.get("expr").lineOr(r.line), r.get("expr").str())
			if r.get("alert") == nil {
				continue
			}
			if r.get("annotations", "summary").str() == "" {
				c.errorf(rel, r.line, "alert %s has no summary annotation", name)
			}
			runbook := r.get("annotations", "runbook")
			_, anchor, ok := strings.Cut(runbook.str(), "#")
			switch {
			case runbook == nil:
				c.errorf(rel, r.line, "alert %s has no runbook annotation", name)
			case !ok || !strings.Contains(runbook.str(), "README.md"):
				c.errorf(rel, runbook.line, "alert %s: runbook %q must link to a README section (README.md#section)", name, runbook.str())
			case !anchors[anchor]:
				c.errorf(rel, runbook.line, "alert %s: runbook anchor #%s is no heading of the README", name, anchor)
			}
			if d := r.get("for"); d != nil {
				if _, err := model.ParseDuration(d.str()); err != nil {
					c.errorf(rel, d.line, "alert %s: for %q: %v", name, d.str(), err)
				}
			}
		}
	}
	if alerts == 0 {
		c.errorf(rel, groups.lineOr(0), "no alerts")
	}
}

// readmeAnchors are the GitHub anchors of the README's headings.
func readmeAnchors() map[string]bool {
	b, _ := os.ReadFile(readmePath)
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return out
}

// plain is a YAML tree as maps, slices and strings, for comparing two.
func plain(n *yamlNode) any {
	switch {
	case n == nil:
		return nil
	case n.kind == yamlMap:
		m := map[string]any{}
		for k, v := range n.m {
			m[k] = plain(v)
		}
		return m
	case n.kind == yamlSeq:
		var s []any
		for _, it := range n.items {
			s = append(s, plain(it))
		}
		return s
	case n.kind == yamlScalar:
		return n.value
	}
	return nil
}

// checkRuleCopies: every PrometheusRule carries the groups of the rules
// file, since kustomize cannot wrap the file itself.
func (c *deployChecker) checkRuleCopies() {
	var files, rules []*deployYAML
	for _, f := range c.yamls {
		for _, doc := range f.docs {
			switch {
			case doc.get("kind").str() == "PrometheusRule":
				rules = append(rules, &deployYAML{rel: f.rel, docs: []*yamlNode{doc.get("spec", "groups")}})
			case doc.get("kind") == nil && doc.get("groups") != nil:
				files = append(files, &deployYAML{rel: f.rel, docs: []*yamlNode{doc.get("groups")}})
			}
		}
	}
	if len(files) != 1 {
		c.errorf("prometheus", 0, "want one Prometheus rules file, found %d", len(files))
		return
	}
	for _, r := range rules {
		if !reflect.DeepEqual(plain(r.docs[0]), plain(files[0].docs[0])) {
			c.errorf(r.rel, r.docs[0].lineOr(0), "the PrometheusRule's groups differ from %s: copy them over", files[0].rel)
		}
	}
}

// ---- Grafana ----

type dashboard struct {
	UID           string                        `json:"uid"`
	Title         string                        `json:"title"`
	SchemaVersion int                           `json:"schemaVersion"`
	Panels        []dashboardPanel              `json:"panels"`
	Templating    struct{ List []dashboardVar } `json:"templating"`
}

type dashboardVar struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// checkDashboard checks what Grafana needs to import a dashboard as it is,
// and every query.
func (c *deployChecker) checkDashboard(rel string, b []byte) {
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		c.errorf(rel, 0, "%v", err)
		return
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion <= 0 || len(d.Panels) == 0 {
		c.errorf(rel, 0, "a dashboard needs uid, title, schemaVersion and panels (got %q, %q, %d, %d panels)", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	vars := map[string]dashboardVar{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.Query != "prometheus" {
		c.errorf(rel, 0, "no datasource variable of type datasource for prometheus: the dashboard would not import into another Grafana")
	}
	for _, name := range []string{"job", "namespace"} {
		if vars[name].Type != "query" {
			c.errorf(rel, 0, "no %s variable (type query)", name)
		}
	}
	ids := map[int]bool{}
	var panels []dashboardPanel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...) // collapsed rows hold theirs
	}
	for _, p := range panels {
		if ids[p.ID] {
			c.errorf(rel, 0, "panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			c.errorf(rel, 0, "%s (id %d) needs a title and a gridPos", where, p.ID)
		}
		if strings.TrimSpace(p.Description) == "" {
			c.errorf(rel, 0, "%s has no description saying what a bad value means", where)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			c.errorf(rel, 0, "%s must use the datasource variable (uid ${datasource})", where)
		}
		if len(p.Targets) == 0 {
			c.errorf(rel, 0, "%s has no queries", where)
		}
		for _, t := range p.Targets {
			c.checkPromQL(rel, 0, t.Expr)
			if !strings.Contains(t.Expr, "$job") && strings.Contains(t.Expr, "{") {
				c.errorf(rel, 0, "%s: query %q does not select $job", where, t.Expr)
			}
		}
	}
}

// checkDashboardCopies: a dashboard of the same name elsewhere (the
// Kubernetes ConfigMap component's, which kustomize can only read from its
// own folder) is the same file.
func (c *deployChecker) checkDashboardCopies(jsons map[string][]byte) {
	const main = "grafana/cgworker.json"
	want, ok := jsons[main]
	if !ok {
		c.errorf(main, 0, "missing")
		return
	}
	for rel, b := range jsons {
		if rel != main && path.Base(rel) == path.Base(main) && string(b) != string(want) {
			c.errorf(rel, 0, "differs from %s: copy it over", main)
		}
	}
	for _, obj := range c.objects {
		if obj.doc.get("kind").str() != "ConfigMap" || obj.doc.get("metadata", "labels", "grafana_dashboard") == nil {
			continue
		}
		if v := obj.doc.get("metadata", "labels", "grafana_dashboard").str(); v != "1" {
			c.errorf(obj.file, 0, "grafana_dashboard label %q, want \"1\" (the Grafana sidecar's default)", v)
		}
		if obj.doc.get("data", path.Base(main)).str() != string(want) {
			c.errorf(obj.file, 0, "the dashboard ConfigMap does not carry %s", main)
		}
		c.dashboardConfigMaps++
	}
	if c.dashboardConfigMaps == 0 {
		c.errorf("kubernetes", 0, "no ConfigMap labelled grafana_dashboard carries the dashboard")
	}
}

// ---- compose: Prometheus and Grafana ----

// composeMount is the host file or folder mounted at target in service s,
// relative to root; "" when none.
func composeMount(dir string, s *yamlNode, target string) string {
	for _, v := range s.get("volumes").strs() {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.TrimSuffix(parts[1], "/") == strings.TrimSuffix(target, "/") {
			return path.Join(dir, parts[0])
		}
	}
	return ""
}

// composeMountOf is composeMount for a file inside a mounted folder.
func composeMountOf(dir string, s *yamlNode, file string) string {
	for _, v := range s.get("volumes").strs() {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		if rest, ok := strings.CutPrefix(file, strings.TrimSuffix(parts[1], "/")); ok && (rest == "" || rest[0] == '/') {
			return path.Join(dir, parts[0], rest)
		}
	}
	return ""
}

func (c *deployChecker) readYAML(rel string) *yamlNode {
	for _, f := range c.yamls {
		if f.rel == rel && len(f.docs) > 0 {
			return f.docs[0]
		}
	}
	return nil
}

// checkComposePrometheus: Prometheus loads the rules file and scrapes
// every service that runs the worker, on its metrics port.
func (c *deployChecker) checkComposePrometheus(rel, name string, s *yamlNode, runPorts map[string]string) {
	dir := path.Dir(rel)
	config := "/etc/prometheus/prometheus.yml"
	for _, a := range s.get("command").strs() {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			config = v
		}
	}
	src := composeMountOf(dir, s, config)
	cfg := c.readYAML(src)
	if cfg == nil {
		c.errorf(rel, s.line, "service %s: its configuration %s is not mounted from a YAML file of deploy/", name, config)
		return
	}
	rules := 0
	for _, r := range cfg.get("rule_files").list() {
		host := composeMountOf(dir, s, r.str())
		doc := c.readYAML(host)
		if doc == nil || doc.get("groups") == nil {
			c.errorf(src, r.line, "rule file %s is not mounted from a rules file of deploy/", r.str())
			continue
		}
		rules++
	}
	if rules == 0 {
		c.errorf(src, cfg.line, "loads no rule file")
	}
	scraped := map[string]bool{}
	for _, job := range cfg.get("scrape_configs").list() {
		if p := job.get("metrics_path").str(); p != "" && p != "/metrics" {
			c.errorf(src, job.line, "metrics_path %q, want /metrics", p)
		}
		var targets []string
		for _, sd := range job.get("dns_sd_configs").list() {
			for _, n := range sd.get("names").strs() {
				targets = append(targets, n+":"+sd.get("port").str())
			}
		}
		for _, st := range job.get("static_configs").list() {
			targets = append(targets, st.get("targets").strs()...)
		}
		for _, t := range targets {
			host, port, _ := strings.Cut(t, ":")
			want, ok := runPorts[host]
			if !ok {
				continue
			}
			scraped[host] = true
			if port != want {
				c.errorf(src, job.line, "scrapes %s on port %s; its CG_HTTP_ADDR port is %s", host, port, want)
			}
		}
	}
	for svc := range runPorts {
		if !scraped[svc] {
			c.errorf(src, cfg.line, "does not scrape the worker service %s (dns_sd_configs with its name reaches every replica)", svc)
		}
	}
}

// checkComposeGrafana: anonymous read-only access, a provisioned
// Prometheus data source that is the compose Prometheus, and the dashboard
// provisioned from deploy/grafana/cgworker.json.
func (c *deployChecker) checkComposeGrafana(rel, name string, s *yamlNode, env map[string]string, services *yamlNode) {
	dir := path.Dir(rel)
	if env["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || env["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		c.errorf(rel, s.line, "service %s: want anonymous read-only access (GF_AUTH_ANONYMOUS_ENABLED true, GF_AUTH_ANONYMOUS_ORG_ROLE Viewer)", name)
	}
	dsDir := composeMount(dir, s, "/etc/grafana/provisioning/datasources")
	dbDir := composeMount(dir, s, "/etc/grafana/provisioning/dashboards")
	datasources, dashboards := 0, 0
	for _, f := range c.yamls {
		if len(f.docs) == 0 {
			continue
		}
		switch path.Dir(f.rel) {
		case dsDir:
			for _, ds := range f.docs[0].get("datasources").list() {
				if ds.get("type").str() != "prometheus" {
					continue
				}
				datasources++
				host := hostOf(ds.get("url").str())
				svc := services.get(host)
				if svc == nil || !strings.Contains(svc.get("image").str(), "prometheus") {
					c.errorf(f.rel, ds.line, "data source url %q is not the compose Prometheus", ds.get("url").str())
				}
			}
		case dbDir:
			for _, p := range f.docs[0].get("providers").list() {
				folder := p.get("options", "path").str()
				src := composeMountOf(dir, s, path.Join(folder, "cgworker.json"))
				if src != "grafana/cgworker.json" {
					c.errorf(f.rel, p.line, "provider path %s does not hold grafana/cgworker.json in service %s", folder, name)
					continue
				}
				dashboards++
			}
		}
	}
	if datasources == 0 || dashboards == 0 {
		c.errorf(rel, s.line, "service %s: want a provisioned Prometheus data source and the cgworker dashboard (found %d and %d)", name, datasources, dashboards)
	}
}

// checkComposeHealthcheck: the distroless image has no shell, so the
// check must be `/cgworker COMMAND` with a command the binary has.
func (c *deployChecker) checkComposeHealthcheck(rel, name string, s *yamlNode) {
	test := s.get("healthcheck", "test").strs()
	if len(test) < 3 || test[0] != "CMD" || test[1] != "/cgworker" {
		c.errorf(rel, s.get("healthcheck").lineOr(s.line), "service %s: want a healthcheck [\"CMD\", \"/cgworker\", \"healthcheck\"] (the image has no shell)", name)
		return
	}
	c.checkArgs(rel, s.get("healthcheck", "test").line, test[2:])
}

// ---- Kubernetes extras ----

// checkScaledObjectComponent: the component that brings a ScaledObject
// removes spec.replicas from the Deployment, which the ScaledObject owns,
// and teaches kustomize that scaleTargetRef.name names a Deployment.
func (c *deployChecker) checkScaledObjectComponent(rel string) {
	dir := path.Dir(rel)
	k := c.readYAML(path.Join(dir, "kustomization.yaml"))
	if k == nil {
		return
	}
	removes := false
	for _, p := range k.get("patches").list() {
		if p.get("target", "kind").str() != "Deployment" {
			continue
		}
		ops, err := parseYAML(p.get("patch").str())
		if err != nil || len(ops) == 0 {
			continue
		}
		for _, op := range ops[0].list() {
			removes = removes || op.get("op").str() == "remove" && op.get("path").str() == "/spec/replicas"
		}
	}
	if !removes {
		c.errorf(path.Join(dir, "kustomization.yaml"), k.line, "the KEDA component must remove /spec/replicas from the Deployment, or every apply resets the ScaledObject's count")
	}
	named := false
	for _, cf := range k.get("configurations").strs() {
		conf := c.readYAML(path.Join(dir, cf))
		for _, nr := range conf.get("nameReference").list() {
			for _, fs := range nr.get("fieldSpecs").list() {
				named = named || nr.get("kind").str() == "Deployment" && fs.get("kind").str() == "ScaledObject" && fs.get("path").str() == "spec/scaleTargetRef/name"
			}
		}
	}
	if !named {
		c.errorf(path.Join(dir, "kustomization.yaml"), k.line, "no nameReference configuration for ScaledObject spec/scaleTargetRef/name: a namePrefix would break it")
	}
}

// checkPinnedImage: a moving tag with IfNotPresent lets replicas run
// different versions.
func (c *deployChecker) checkPinnedImage(rel string, line int, ref string) {
	if _, ok := cgImageRepo(ref); !ok {
		return
	}
	_, tag, _ := strings.Cut(ref[strings.LastIndexByte(ref, '/')+1:], ":")
	if !strings.Contains(ref, "@") && (tag == "" || tag == "latest") {
		c.errorf(rel, line, "image %q: pin a release tag or digest", ref)
	}
}
