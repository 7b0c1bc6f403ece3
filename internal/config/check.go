package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one configuration error and where it is in the file.
type Problem struct {
	// Line and Column are 1-based; 0 when the value is not in the file
	// (a default, or set by an environment variable).
	Line, Column int
	// Message says what is wrong and how to fix it.
	Message string
}

func (p Problem) String() string {
	switch {
	case p.Line == 0:
		return p.Message
	case p.Column == 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return fmt.Sprintf("line %d, column %d: %s", p.Line, p.Column, p.Message)
}

// Error is every problem found in one configuration, in file order.
type Error struct {
	File     string // "" for the embedded default or bytes given to Parse
	Problems []Problem
}

func (e *Error) Error() string {
	prefix := "config: "
	if e.File != "" {
		prefix = e.File + ": "
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = prefix + p.String()
	}
	return strings.Join(lines, "\n")
}

// check decodes data as strictly as decode does, but instead of stopping
// at the first mistake it walks the YAML tree against Config's fields and
// reports every unknown key, duplicate key and wrong type with its line,
// column and a fix. It returns the tree's value nodes by key path (for
// placing later validation errors) when the structure is sound.
func check(data []byte) (map[string]*yaml.Node, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]*yaml.Node{}, nil // empty file: all defaults
		}
		return nil, []Problem{syntaxProblem(err, data)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, []Problem{{Line: extra.Line, Column: extra.Column,
			Message: "a second YAML document (after ---) would be ignored: keep all settings in one document"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, []Problem{syntaxProblem(err, data)}
	}
	w := walker{nodes: map[string]*yaml.Node{}}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return w.nodes, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return w.nodes, nil // a file of comments only
	}
	w.value(root, reflect.TypeFor[Config](), "")
	if len(w.problems) > 0 {
		return nil, w.problems
	}
	return w.nodes, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML parser error into a Problem with a hint.
func syntaxProblem(err error, data []byte) Problem {
	msg := err.Error()
	p := Problem{Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1]) // the parser knows no column
		p.Message = "YAML syntax: " + m[2]
	}
	tabbed := false
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "\t") && (p.Line == 0 || p.Line == i+1 || p.Line == i+2) {
			tabbed = true
		}
	}
	switch {
	case tabbed || strings.Contains(msg, "tab"):
		p.Message += ": indent with spaces, YAML does not allow tabs"
	default:
		p.Message += ": check the indentation and quoting from this line to the next few (quote values holding \": \" or starting with a special character)"
	}
	return p
}

type walker struct {
	problems []Problem
	nodes    map[string]*yaml.Node // key path -> value node
	// expanding holds the aliases being walked (one that refers to
	// itself would never end); aliases counts expansions, bounded so a
	// "billion laughs" file cannot take the process's time.
	expanding map[*yaml.Node]bool
	aliases   int
}

// maxAliasExpansions bounds alias expansions in one file; real
// configurations use a handful.
const maxAliasExpansions = 1000

// deref follows an alias; ok is false (and a problem is recorded) when the
// alias cannot be followed. done must be called when the walk under it ends.
func (w *walker) deref(n *yaml.Node) (_ *yaml.Node, done func(), ok bool) {
	if n.Kind != yaml.AliasNode {
		return n, func() {}, true
	}
	if n.Alias == nil || w.expanding[n.Alias] {
		w.add(n, "alias *%s refers to itself: a setting cannot contain itself", n.Value)
		return nil, nil, false
	}
	if w.aliases++; w.aliases > maxAliasExpansions {
		if w.aliases == maxAliasExpansions+1 {
			w.add(n, "more than %d alias expansions: the file repeats itself too much, write the settings out", maxAliasExpansions)
		}
		return nil, nil, false
	}
	if w.expanding == nil {
		w.expanding = map[*yaml.Node]bool{}
	}
	w.expanding[n.Alias] = true
	return n.Alias, func() { delete(w.expanding, n.Alias) }, true
}

func (w *walker) add(n *yaml.Node, format string, args ...any) {
	w.problems = append(w.problems, Problem{Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value checks node n against the Go type t; path is its key path
// ("cluster.nats.replicas", "pusher.apps[0]").
func (w *walker) value(n *yaml.Node, t reflect.Type, path string) {
	n, done, ok := w.deref(n)
	if !ok {
		return
	}
	defer done()
	if path != "" {
		w.nodes[path] = n
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null is the zero value: the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		w.scalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				w.add(n, "the file must hold key: value settings (listen: \":6001\", log: ...), got %s", describe(n))
				return
			}
			w.add(n, "`%s`: expected a section of settings (key: value lines indented below it), got %s", path, describe(n))
			return
		}
		w.section(n, t, path, map[string]*yaml.Node{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n, "`%s`: expected a list, such as [a, b] or lines starting with \"- \", got %s", path, describe(n))
			return
		}
		for i, e := range n.Content {
			w.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(n, "`%s`: expected key: value pairs, got %s", path, describe(n))
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.add(k, "`%s`: a key must be a plain name, got %s", path, describe(k))
				continue
			}
			if first, dup := seen[k.Value]; dup {
				w.add(k, "duplicate key `%s` in `%s` (first at line %d): remove one", k.Value, path, first.Line)
				continue
			}
			seen[k.Value] = k
			w.value(v, t.Elem(), path+"."+k.Value)
		}
	default:
		w.scalar(n, t, path)
	}
}

// section checks a mapping against struct type t. seen is shared with
// mappings merged in with "<<" so a key set twice is found across them.
func (w *walker) section(n *yaml.Node, t reflect.Type, path string, seen map[string]*yaml.Node) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			// Keys merged in may be set again here (the local one
			// wins, as the decoder does): they are not duplicates.
			w.merge(v, t, path, map[string]*yaml.Node{})
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.add(k, "a key must be a plain name, got %s", describe(k))
			continue
		}
		where := "`" + path + "`"
		if path == "" {
			where = "the top level"
		}
		f, ok := fields[k.Value]
		if !ok {
			w.add(k, "%s", unknownKey(k.Value, where, fields))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.add(k, "duplicate key `%s` in %s (first at line %d): remove one", k.Value, where, first.Line)
			continue
		}
		seen[k.Value] = k
		w.value(v, f, joinPath(path, k.Value))
	}
}

// merge checks the value of a "<<" key: a mapping or a list of them.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string, seen map[string]*yaml.Node) {
	v, done, ok := w.deref(v)
	if !ok {
		return
	}
	defer done()
	switch v.Kind {
	case yaml.MappingNode:
		w.section(v, t, path, seen)
	case yaml.SequenceNode:
		for _, e := range v.Content {
			w.merge(e, t, path, seen)
		}
	default:
		w.add(v, "`<<` merges a mapping (an anchor such as *defaults), got %s", describe(v))
	}
}

// scalar checks a leaf by decoding it into a fresh value of type t, so it
// accepts exactly what the real decoder accepts.
func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.add(n, "`%s`: expected %s, got %s", path, expectation(t), describe(n))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.add(n, "`%s`: expected %s, got %q", path, expectation(t), n.Value)
	}
}

var durationType = reflect.TypeFor[Duration]()

// expectation names what a value of type t looks like in YAML.
func expectation(t reflect.Type) string {
	if t == durationType {
		return "a duration like 10s, 1m30s or 250ms"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number such as 100"
	case reflect.Float32, reflect.Float64:
		return "a number such as 2.5"
	case reflect.String:
		return "a text value (quote it if it starts with a special character)"
	}
	return "a " + t.String()
}

// describe says what a node is, for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of key: value settings"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// unknownKey explains an unknown key: the nearest valid one when it looks
// like a typo, otherwise the keys that are valid there.
func unknownKey(key, where string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	best, bestDist := "", len(key)+1
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" && bestDist*3 <= max(len(key), len(best)) {
		return fmt.Sprintf("unknown key `%s` in %s: did you mean `%s`?", key, where, best)
	}
	return fmt.Sprintf("unknown key `%s` in %s: the keys here are %s", key, where, strings.Join(names, ", "))
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each count 1, so
// "clutser" is 1 away from "cluster".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

var problemPathRE = regexp.MustCompile(`^[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*`)

// place finds where a validation message's setting is in the file: the
// message starts with the setting's key path ("cluster.nats.replicas 7:
// ..."). A setting that is not in the file (a default, or set from the
// environment) gets no line rather than a misleading one.
func place(msg string, nodes map[string]*yaml.Node) Problem {
	if n, ok := nodes[problemPathRE.FindString(msg)]; ok {
		return Problem{Line: n.Line, Column: n.Column, Message: msg}
	}
	return Problem{Message: msg}
}
