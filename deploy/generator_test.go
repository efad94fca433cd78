package deploy

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// generatedConfigMaps are the ConfigMaps a kustomization's
// configMapGenerator makes, as documents the other checks read like any
// ConfigMap: data from env files (KEY=VALUE lines, with the line of each in
// its file), files and literals. Names are the generator's, without the
// hash suffix kustomize adds (and rewrites every reference to).
func (c *deployChecker) generatedConfigMaps(rel string, doc *yamlNode) []*k8sObject {
	dir := path.Dir(rel)
	var out []*k8sObject
	for _, g := range doc.get("configMapGenerator").list() {
		data := &yamlNode{kind: yamlMap, line: g.line, m: map[string]*yamlNode{}}
		file := rel
		add := func(k, v string, line int) {
			if _, dup := data.m[k]; !dup {
				data.keys = append(data.keys, k)
			}
			data.m[k] = &yamlNode{kind: yamlScalar, line: line, value: v}
		}
		for _, env := range g.get("envs").strs() {
			file = path.Join(dir, env)
			f, err := os.Open(filepath.Join(c.root, filepath.FromSlash(file)))
			if err != nil {
				continue // reported by checkKustomization
			}
			sc := bufio.NewScanner(f)
			for n := 1; sc.Scan(); n++ {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					c.errorf(file, n, "not KEY=VALUE: %q", line)
					continue
				}
				add(k, v, n)
			}
			_ = f.Close()
		}
		for _, src := range g.get("files").strs() {
			k, name, ok := strings.Cut(src, "=")
			if !ok {
				k, name = path.Base(src), src
			}
			b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(path.Join(dir, name))))
			if err == nil {
				add(k, string(b), g.line)
			}
		}
		for _, lit := range g.get("literals").strs() {
			k, v, _ := strings.Cut(lit, "=")
			add(k, v, g.line)
		}
		labels := g.get("options", "labels")
		meta := &yamlNode{kind: yamlMap, line: g.line, m: map[string]*yamlNode{}, keys: []string{"name"}}
		meta.m["name"] = g.get("name")
		if labels != nil {
			meta.keys = append(meta.keys, "labels")
			meta.m["labels"] = labels
		}
		cm := &yamlNode{kind: yamlMap, line: g.line, keys: []string{"kind", "metadata", "data"}, m: map[string]*yamlNode{
			"kind": {kind: yamlScalar, line: g.line, value: "ConfigMap"}, "metadata": meta, "data": data,
		}}
		out = append(out, &k8sObject{file: file, doc: cm})
	}
	return out
}
