package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a configuration file.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the field path, such as routes[0].mcp.server.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// ErrorList is every problem found in one file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
}

// Errors returns the individual errors in err, which may be an ErrorList, a
// single *Error or anything else (returned as nil).
func Errors(err error) []*Error {
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}

// decoder walks a YAML node tree against the configuration structs. It
// does the strict decoding itself (rather than yaml's KnownFields) so that it
// can report every problem, each with a column and a field path.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	root      *yaml.Node
	nodes     map[string]*yaml.Node // field path → its value node
	errs      ErrorList
	errPaths  map[string]bool
	hasAudit  bool   // audit.file is set, for the rules that need it
	dir       string // the configuration file's directory, for the files it names
}

// resolve returns a file the configuration names, relative to its
// directory when it is not absolute.
func (d *decoder) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

func (d *decoder) parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		}
		return nil, ErrorList{{File: d.file, Line: line, Column: 1, Msg: "not valid YAML: " + msg}}
	}
	d.nodes = make(map[string]*yaml.Node)
	d.errPaths = make(map[string]bool)
	if doc.Kind == 0 || len(doc.Content) == 0 {
		d.root = &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
		return d.root, nil
	}
	d.root = doc.Content[0]
	return d.root, nil
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
	d.errPaths[path] = true
}

// failed reports whether decoding already reported an error at path.
func (d *decoder) failed(path string) bool { return d.errPaths[path] }

// failedUnder reports whether decoding reported an error at path or below.
func (d *decoder) failedUnder(path string) bool {
	for p := range d.errPaths {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// pos returns the node decoded at path, or the nearest decoded ancestor, or
// the root: the best place to point at for an error about path.
func (d *decoder) pos(path string) *yaml.Node {
	for p := path; p != ""; {
		if n, ok := d.nodes[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d.root
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	envRef          = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{[^}]*\}?`)
)

// decode fills v (a pointer) from n, reporting problems against path "".
func (d *decoder) decode(n *yaml.Node, v any) {
	d.value(n, reflect.ValueOf(v).Elem(), "")
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.nodes[path] = n
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the default
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		d.scalar(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "must be a list, not %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of fields, not %s", describe(n))
		return
	}
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := "unknown field"
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else if len(names) > 0 {
				msg += "; known fields here: " + strings.Join(names, ", ")
			} else {
				msg += "; this block takes no fields yet"
			}
			d.errorf(k, fp, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, fp, "appears twice; keep one")
			continue
		}
		seen[k.Value] = true
		d.value(val, v.Field(idx), fp)
	}
}

// mapping decodes a map with string keys (such as a policy's claims), each
// value at path.key.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, not %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		key := reflect.New(v.Type().Key()).Elem()
		key.SetString(k.Value)
		if m.MapIndex(key).IsValid() {
			d.errorf(k, fp, "appears twice; keep one")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, fp)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && v.Kind() == reflect.String {
		s, ok := d.expand(n, path)
		if !ok {
			return
		}
		v.SetString(s)
		return
	}
	if n.Kind != yaml.ScalarNode && !reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		d.errorf(n, path, "must be a single value, not %s", describe(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
			if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
				msg = msg[i+2:]
			}
		}
		d.errorf(n, path, "%s", msg)
	}
}

// expand replaces ${NAME} with the environment variable NAME and $$ with $.
// A variable that is not set is an error.
func (d *decoder) expand(n *yaml.Node, path string) (string, bool) {
	if !strings.Contains(n.Value, "$") {
		return n.Value, true
	}
	ok := true
	out := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := envRef.FindStringSubmatch(m)
		if sub[1] == "" {
			d.errorf(n, path, "%q is not a valid environment reference; write ${NAME}, or $$ for a literal $", m)
			ok = false
			return m
		}
		val, set := d.lookupEnv(sub[1])
		if !set {
			d.errorf(n, path, "environment variable %s is not set", sub[1])
			ok = false
			return m
		}
		return val
	})
	return out, ok
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "this node"
}

// suggest returns the known name closest to name, if it is close enough to
// be a typo.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(name), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
