package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKustomizeRenders renders the base with every component under an
// overlay with a namePrefix, when kubectl or kustomize is installed (the
// drift test checks the structure without them): the ScaledObject follows
// the renamed Deployment, which has no spec.replicas, and the pods load the
// hashed settings ConfigMap.
func TestKustomizeRenders(t *testing.T) {
	t.Parallel()
	var render []string
	if p, err := exec.LookPath("kustomize"); err == nil {
		render = []string{p, "build"}
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		render = []string{p, "kustomize"}
	} else {
		t.Skip("neither kustomize nor kubectl is installed")
	}
	base, err := filepath.Abs("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(overlay, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	components, err := os.ReadDir(filepath.Join(base, "optional"))
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: acme-\nresources:\n  - " + rel(base) + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + rel(filepath.Join(base, "optional", c.Name())) + "\n"
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(render[0], append(render[1:], overlay)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(render, " "), err, out)
	}
	docs, err := parseYAML(string(out))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]*yamlNode{}
	for _, d := range docs {
		byKind[d.get("kind").str()] = append(byKind[d.get("kind").str()], d)
	}
	deploy := byKind["Deployment"]
	if len(deploy) != 1 {
		t.Fatalf("%d Deployments rendered, want 1", len(deploy))
	}
	name := deploy[0].get("metadata", "name").str()
	if r := deploy[0].get("spec", "replicas"); r != nil {
		t.Errorf("the Deployment keeps spec.replicas %s next to the ScaledObject", r.str())
	}
	for _, so := range byKind["ScaledObject"] {
		if got := so.get("spec", "scaleTargetRef", "name").str(); got != name {
			t.Errorf("scaleTargetRef.name %q, want the Deployment's %q", got, name)
		}
	}
	ref := ""
	for _, ctr := range deploy[0].get("spec", "template", "spec", "containers").list() {
		for _, from := range ctr.get("envFrom").list() {
			ref = from.get("configMapRef", "name").str()
		}
	}
	if !strings.HasPrefix(ref, "acme-cgworker-") || ref == "acme-cgworker-dashboard" {
		t.Errorf("the pods load ConfigMap %q, want the hashed acme-cgworker-<hash>", ref)
	}
	for _, kind := range []string{"PrometheusRule", "ServiceMonitor", "Secret", "Consumer", "KeyValue"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s rendered", kind)
		}
	}
}
