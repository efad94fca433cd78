package deploy

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML of deploy/ is read with go.yaml.in/yaml/v3, the maintained
// continuation of gopkg.in/yaml.v3: its Node keeps the line of every value,
// so a problem names the file and line, and it is already in the module
// graph through the Prometheus libraries this test uses. (sigs.k8s.io/yaml
// converts to JSON and loses the lines; goccy/go-yaml would be a third
// YAML library in the graph.) The checks read the tree below, with scalars
// as text, as a YAML reader without a schema would.

type yamlKind int

const (
	yamlNull yamlKind = iota
	yamlScalar
	yamlMap
	yamlSeq
)

// yamlNode is one parsed value.
type yamlNode struct {
	kind  yamlKind
	line  int // 1-based line where the value starts
	value string
	keys  []string // mapping keys in file order
	m     map[string]*yamlNode
	items []*yamlNode
}

// parseYAML reads every document of src.
func parseYAML(src string) ([]*yamlNode, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var docs []*yamlNode
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		doc, err := fromYAML(&n)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

// fromYAML converts a document. A mapping key given twice is an error: a
// YAML reader keeps one of the two silently, so one of them is a mistake.
func fromYAML(n *yaml.Node) (*yamlNode, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &yamlNode{line: n.Line}, nil
		}
		return fromYAML(n.Content[0])
	case yaml.AliasNode:
		return fromYAML(n.Alias)
	case yaml.MappingNode:
		out := &yamlNode{kind: yamlMap, line: n.Line, m: map[string]*yamlNode{}}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := out.m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q already defined", n.Content[i].Line, k)
			}
			v, err := fromYAML(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out.keys = append(out.keys, k)
			out.m[k] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := &yamlNode{kind: yamlSeq, line: n.Line}
		for _, c := range n.Content {
			v, err := fromYAML(c)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, v)
		}
		return out, nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return &yamlNode{line: n.Line}, nil
		}
		return &yamlNode{kind: yamlScalar, line: n.Line, value: n.Value}, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// get follows mapping keys; nil when any step is missing or not a mapping.
func (n *yamlNode) get(path ...string) *yamlNode {
	for _, k := range path {
		if n == nil || n.kind != yamlMap {
			return nil
		}
		n = n.m[k]
	}
	return n
}

// str is the scalar's text; "" for anything else.
func (n *yamlNode) str() string {
	if n == nil || n.kind != yamlScalar {
		return ""
	}
	return n.value
}

// list is the sequence's items; nil for anything else.
func (n *yamlNode) list() []*yamlNode {
	if n == nil || n.kind != yamlSeq {
		return nil
	}
	return n.items
}

// strs is a sequence of scalars as strings.
func (n *yamlNode) strs() []string {
	var out []string
	for _, it := range n.list() {
		out = append(out, it.str())
	}
	return out
}

// lineOr is the node's line, or def for a missing node.
func (n *yamlNode) lineOr(def int) int {
	if n == nil {
		return def
	}
	return n.line
}

// keysOrNil is a mapping's keys; nil for anything else.
func (n *yamlNode) keysOrNil() []string {
	if n == nil || n.kind != yamlMap {
		return nil
	}
	return n.keys
}
