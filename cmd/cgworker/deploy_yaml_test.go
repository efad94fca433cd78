package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// A reader for the YAML subset the files in deploy/ are written in, so the
// drift test needs no YAML library: block mappings and sequences, plain,
// single- and double-quoted scalars, one-line flow sequences of scalars,
// empty flow mappings ({}), block scalars (| and >), comments and "---"
// between documents. Anything else (anchors, aliases, tags, flow mappings,
// multi-line plain scalars, tabs in indentation, duplicate keys) is an
// error, which keeps deploy/ readable by the test and by people.

type yamlKind int

const (
	yamlNull yamlKind = iota
	yamlScalar
	yamlMap
	yamlSeq
)

// yamlNode is one parsed value. Scalars stay strings: the checks compare
// text, as a YAML reader without a schema would.
type yamlNode struct {
	kind  yamlKind
	line  int // 1-based line where the value starts
	value string
	keys  []string // mapping keys in file order
	m     map[string]*yamlNode
	items []*yamlNode
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

type yamlLine struct {
	num    int
	indent int
	text   string // after the indentation, comment stripped, right-trimmed
	raw    string
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

// parseYAML returns the documents of src (empty documents left out).
func parseYAML(src string) ([]*yamlNode, error) {
	var docs []*yamlNode
	var cur []yamlLine
	flush := func() error {
		p := &yamlParser{lines: cur}
		cur = nil
		first := p.peek()
		if first == nil {
			return nil
		}
		n, err := p.block(first.indent)
		if err != nil {
			return err
		}
		if l := p.peek(); l != nil {
			return fmt.Errorf("line %d: unexpected indentation", l.num)
		}
		docs = append(docs, n)
		return nil
	}
	for i, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, "\r")
		num := i + 1
		if raw == "---" || raw == "..." || strings.HasPrefix(raw, "--- ") {
			if strings.HasPrefix(raw, "--- ") && strings.TrimSpace(stripYAMLComment(raw[4:])) != "" {
				return nil, fmt.Errorf("line %d: content after ---", num)
			}
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		body := strings.TrimLeft(raw, " ")
		if strings.HasPrefix(body, "\t") {
			return nil, fmt.Errorf("line %d: tab in indentation", num)
		}
		if strings.HasPrefix(body, "%") && len(body) == len(raw) {
			return nil, fmt.Errorf("line %d: directives are not supported", num)
		}
		text := strings.TrimRight(stripYAMLComment(body), " \t")
		cur = append(cur, yamlLine{num: num, indent: len(raw) - len(body), text: text, raw: raw})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

// peek is the next line with content, skipping blank and comment lines.
func (p *yamlParser) peek() *yamlLine {
	for p.i < len(p.lines) && p.lines[p.i].text == "" {
		p.i++
	}
	if p.i == len(p.lines) {
		return nil
	}
	return &p.lines[p.i]
}

func (p *yamlParser) block(indent int) (*yamlNode, error) {
	l := p.peek()
	if isYAMLSeqItem(l.text) {
		return p.seq(indent)
	}
	if _, _, ok := splitYAMLKey(l.text); ok {
		return p.mapping(indent)
	}
	return nil, fmt.Errorf("line %d: a value on a line of its own is not supported; write key: value", l.num)
}

func (p *yamlParser) mapping(indent int) (*yamlNode, error) {
	n := &yamlNode{kind: yamlMap, line: p.peek().num, m: map[string]*yamlNode{}}
	for {
		l := p.peek()
		if l == nil || l.indent < indent {
			return n, nil
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.num)
		}
		if isYAMLSeqItem(l.text) {
			return nil, fmt.Errorf("line %d: list item where a key was expected", l.num)
		}
		key, rest, ok := splitYAMLKey(l.text)
		if !ok {
			return nil, fmt.Errorf("line %d: expected key: value", l.num)
		}
		if _, dup := n.m[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.num, key)
		}
		num := l.num
		p.i++
		v, err := p.value(rest, indent, num, true)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, key)
		n.m[key] = v
	}
}

func (p *yamlParser) seq(indent int) (*yamlNode, error) {
	n := &yamlNode{kind: yamlSeq, line: p.peek().num}
	for {
		l := p.peek()
		if l == nil || l.indent < indent {
			return n, nil
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.num)
		}
		if !isYAMLSeqItem(l.text) {
			return n, nil // the parent mapping's next key
		}
		after := l.text[1:]
		rest := strings.TrimLeft(after, " ")
		var item *yamlNode
		var err error
		switch {
		case rest == "":
			num := l.num
			p.i++
			if next := p.peek(); next != nil && next.indent > indent {
				item, err = p.block(next.indent)
			} else {
				item = &yamlNode{kind: yamlNull, line: num}
			}
		case isYAMLSeqItem(rest):
			return nil, fmt.Errorf("line %d: a list inside a list item on one line is not supported", l.num)
		default:
			if _, _, ok := splitYAMLKey(rest); ok {
				// "- key: value": a mapping whose keys line up after "- ".
				l.indent += 1 + len(after) - len(rest)
				l.text = rest
				item, err = p.mapping(l.indent)
			} else {
				num := l.num
				p.i++
				item, err = p.value(rest, indent, num, false)
			}
		}
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, item)
	}
}

// value parses what follows "key:" or "- ". A list may sit at its key's
// indentation (key:\n- a), as kubectl writes it.
func (p *yamlParser) value(rest string, indent, num int, sameIndentSeq bool) (*yamlNode, error) {
	if rest == "" {
		l := p.peek()
		switch {
		case l != nil && l.indent > indent:
			return p.block(l.indent)
		case sameIndentSeq && l != nil && l.indent == indent && isYAMLSeqItem(l.text):
			return p.seq(indent)
		}
		return &yamlNode{kind: yamlNull, line: num}, nil
	}
	if rest[0] == '|' || rest[0] == '>' {
		return p.blockScalar(rest, indent, num)
	}
	return parseYAMLScalar(rest, num)
}

func (p *yamlParser) blockScalar(header string, indent, num int) (*yamlNode, error) {
	style, chomp := header[0], header[1:]
	if chomp != "" && chomp != "-" && chomp != "+" {
		return nil, fmt.Errorf("line %d: block scalar header %q is not supported", num, header)
	}
	var lines []string
	blockIndent := -1
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if strings.TrimSpace(l.raw) == "" {
			lines = append(lines, "")
			p.i++
			continue
		}
		if l.indent <= indent {
			break
		}
		if blockIndent < 0 {
			blockIndent = l.indent
		}
		if l.indent < blockIndent {
			return nil, fmt.Errorf("line %d: less indented than the first line of its block", l.num)
		}
		lines = append(lines, l.raw[blockIndent:])
		p.i++
	}
	trailing := 0
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
		trailing++
	}
	var text string
	if style == '|' {
		text = strings.Join(lines, "\n")
	} else {
		var b strings.Builder
		for i, s := range lines {
			switch {
			case i == 0:
			case s == "" || lines[i-1] == "":
				b.WriteByte('\n')
			default:
				b.WriteByte(' ')
			}
			b.WriteString(s)
		}
		text = b.String()
	}
	switch {
	case len(lines) == 0 || chomp == "-":
	case chomp == "+":
		text += strings.Repeat("\n", 1+trailing)
	default:
		text += "\n"
	}
	return &yamlNode{kind: yamlScalar, line: num, value: text}, nil
}

func parseYAMLScalar(s string, num int) (*yamlNode, error) {
	scalar := func(v string) *yamlNode { return &yamlNode{kind: yamlScalar, line: num, value: v} }
	switch c := s[0]; {
	case c == '"' || c == '\'':
		end := yamlQuotedEnd(s)
		if end < 0 {
			return nil, fmt.Errorf("line %d: unterminated quoted string", num)
		}
		if end != len(s) {
			return nil, fmt.Errorf("line %d: text after a closing quote", num)
		}
		v, err := unquoteYAML(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", num, err)
		}
		return scalar(v), nil
	case c == '[':
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("line %d: a flow list must close on its line", num)
		}
		n := &yamlNode{kind: yamlSeq, line: num}
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if inner == "" {
			return n, nil
		}
		parts, err := splitYAMLFlow(inner)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", num, err)
		}
		for _, part := range parts {
			part = strings.TrimSpace(part)
			if part == "" || part[0] == '[' || part[0] == '{' {
				return nil, fmt.Errorf("line %d: only scalars are supported in a flow list", num)
			}
			item, err := parseYAMLScalar(part, num)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		return n, nil
	case s == "{}":
		return &yamlNode{kind: yamlMap, line: num, m: map[string]*yamlNode{}}, nil
	case c == '{':
		return nil, fmt.Errorf("line %d: flow mappings are not supported; use a block mapping", num)
	case strings.IndexByte("&*!%@`?", c) >= 0:
		return nil, fmt.Errorf("line %d: anchors, aliases, tags and reserved indicators are not supported", num)
	}
	if strings.Contains(s, ": ") {
		return nil, fmt.Errorf("line %d: \": \" inside a plain value; quote the value", num)
	}
	return scalar(s), nil
}

func isYAMLSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// splitYAMLKey splits "key: rest"; ok is false when t is not a mapping entry.
func splitYAMLKey(t string) (key, rest string, ok bool) {
	if t == "" {
		return "", "", false
	}
	switch t[0] {
	case '"', '\'':
		end := yamlQuotedEnd(t)
		if end < 0 {
			return "", "", false
		}
		k, err := unquoteYAML(t[:end])
		if err != nil {
			return "", "", false
		}
		r := strings.TrimLeft(t[end:], " ")
		if r == ":" {
			return k, "", true
		}
		if strings.HasPrefix(r, ": ") {
			return k, strings.TrimSpace(r[2:]), true
		}
		return "", "", false
	case '[', '{':
		return "", "", false
	}
	for i := 0; i < len(t); i++ {
		if t[i] == ':' && (i+1 == len(t) || t[i+1] == ' ') {
			k := strings.TrimSpace(t[:i])
			if k == "" {
				return "", "", false
			}
			return k, strings.TrimSpace(t[i+1:]), true
		}
	}
	return "", "", false
}

// yamlQuotedEnd is the index just after the quoted string s starts with, or
// -1 when it is not closed.
func yamlQuotedEnd(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return -1
}

func unquoteYAML(tok string) (string, error) {
	if tok[0] == '\'' {
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'"), nil
	}
	v, err := strconv.Unquote(tok)
	if err != nil {
		return "", fmt.Errorf("bad double-quoted string %s", tok)
	}
	return v, nil
}

// splitYAMLFlow splits the inside of a flow list at commas outside quotes.
func splitYAMLFlow(s string) ([]string, error) {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\'':
			end := yamlQuotedEnd(s[i:])
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted string")
			}
			i += end - 1
		case ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:]), nil
}

// stripYAMLComment cuts a "#" comment that starts the text or follows a
// space, outside quotes.
func stripYAMLComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = 0
			}
		case quote == '\'':
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
				} else {
					quote = 0
				}
			}
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" \t[,{", s[i-1]) >= 0):
			quote = c
		}
	}
	return s
}

func TestDeployYAML(t *testing.T) {
	t.Parallel()
	src := `# a comment
apiVersion: v1   # trailing comment
kind: "Config#Map"
data:
  A: 'it''s'
  B: "x: y"
  C: http://host:80/#frag
list:
- a
- name: n
  value: v
-
  nested: true
flow: ["run", 'b', c]
empty: {}
none:
text: |
  line one
    indented
  # not a comment

folded: >-
  one
  two
---
second: 2
`
	docs, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	d := docs[0]
	checks := map[string]string{
		"apiVersion": d.get("apiVersion").str(),
		"kind":       d.get("kind").str(),
		"A":          d.get("data", "A").str(),
		"B":          d.get("data", "B").str(),
		"C":          d.get("data", "C").str(),
		"list0":      d.get("list").list()[0].str(),
		"list1":      d.get("list").list()[1].get("value").str(),
		"list2":      d.get("list").list()[2].get("nested").str(),
		"flow":       strings.Join(d.get("flow").strs(), ","),
		"text":       d.get("text").str(),
		"folded":     d.get("folded").str(),
		"second":     docs[1].get("second").str(),
	}
	want := map[string]string{
		"apiVersion": "v1", "kind": "Config#Map", "A": "it's", "B": "x: y", "C": "http://host:80/#frag",
		"list0": "a", "list1": "v", "list2": "true", "flow": "run,b,c",
		"text": "line one\n  indented\n# not a comment\n", "folded": "one two", "second": "2",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %q, want %q", k, checks[k], w)
		}
	}
	if d.get("empty").kind != yamlMap || d.get("none").kind != yamlNull {
		t.Errorf("empty = %v, none = %v; want an empty mapping and null", d.get("empty").kind, d.get("none").kind)
	}
	if l := d.get("list").list()[1].line; l != 10 {
		t.Errorf("line of the second list item = %d, want 10", l)
	}

	for name, bad := range map[string]string{
		"tab":             "a:\n\tb: 1\n",
		"anchor":          "a: &x 1\n",
		"alias":           "a: *x\n",
		"tag":             "a: !!str 1\n",
		"flow mapping":    "a: {b: 1}\n",
		"duplicate key":   "a: 1\na: 2\n",
		"over-indented":   "a: 1\n  b: 2\n",
		"plain multiline": "a:\n  just text\n",
		"colon in plain":  "a: b: c\n",
		"unterminated":    "a: \"b\n",
		"open flow list":  "a: [b, c\n",
		"list for key":    "a: 1\n- b\n",
	} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("%s: parsed %q without an error", name, bad)
		}
	}
}
