package docgen

import (
	"encoding"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/proxy/config"
)

// ModulePath is the root module's path: packages under it are read from
// the repository to find their doc comments.
const ModulePath = "github.com/mcp-proxy/mcp-proxy"

// Option is one row of the configuration reference.
type Option struct {
	// Path is the option's place in the file, such as routes[].mcp.server;
	// [] stands for any element of a list, <name> for any key of a map.
	Path        string
	Type        string
	Default     string
	Description string
}

// ConfigReference is the configuration reference table of proxy/config's
// struct tree, read from the repository at root.
//
// Each row comes from one field: its path from the yaml tags, its type from
// the Go type, its description from the field's doc comment (a leading "Name
// is the ..." becomes "The ..."). The Default column is the comment's sentence
// that starts with "Default" (Default ":443". or Default: openid, email.),
// else the zero value (false, 0, or none). Write a default that way for it
// to show: "(default: x)" inside another sentence stays in the description.
func ConfigReference(root string) (string, error) {
	opts, err := Options(reflect.TypeFor[config.Config](), ModuleSource(root))
	if err != nil {
		return "", err
	}
	return OptionTable(opts), nil
}

// ModuleSource finds the source directory of the packages of this module
// in the repository at root.
func ModuleSource(root string) func(pkgPath string) (string, bool) {
	return func(pkgPath string) (string, bool) {
		if pkgPath == ModulePath {
			return root, true
		}
		rest, ok := strings.CutPrefix(pkgPath, ModulePath+"/")
		if !ok {
			return "", false
		}
		return filepath.Join(root, filepath.FromSlash(rest)), true
	}
}

// OptionTable renders options as a Markdown table. Values in the Default
// and Description columns (URLs, ${VARIABLES}, quoted strings, option names,
// file names, addresses, paths) are written as code, so that nothing in
// them reads as Markdown: an address with an @ would become a mailto: link.
func OptionTable(opts []Option) string {
	names := optionNames(opts)
	var b strings.Builder
	b.WriteString("| Option | Type | Default | Description |\n|---|---|---|---|\n")
	for _, o := range opts {
		def := o.Default
		switch {
		case def == "":
			def = "—"
		case strings.HasPrefix(def, "`"):
			def = strings.ReplaceAll(def, "|", `\|`) // a code span shows entities as written
		default:
			def = codeValues(def, names)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.Path, cell(o.Type), def, codeValues(o.Description, names))
	}
	return b.String()
}

// cell escapes what would end a table cell or read as an HTML tag.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// valueRE finds what codeValues writes as code: a quoted string, a URL
// (whose <placeholder> parts may hold spaces), a ${VARIABLE}, an address
// with a port, an absolute path, or a word joined by dots or underscores.
var valueRE = regexp.MustCompile(`"[^"\s][^"]*"` +
	`|[a-z][a-z0-9+.-]*://(?:<[^>]*>|[^\s<>"])+` +
	`|\$\{[A-Za-z_][A-Za-z0-9_]*\}` +
	`|\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b` +
	`|(?:^|[\s(])/[a-z][a-z0-9/._-]*[a-z0-9]` +
	`|\b[a-z][a-z0-9-]*(?:[._][a-z0-9-]+)+\b`)

// fileExt are the extensions of file names that codeValues writes as code.
var fileExt = []string{".db", ".key", ".yaml", ".yml", ".pem", ".crt", ".json"}

// codeValues writes the values in s as code spans and escapes the rest for
// a table cell. A dotted or underscored word is a value when it has an
// underscore, names an option (or the end of one's path), or is a file
// name; "e.g." and the like stay prose.
func codeValues(s string, names map[string]bool) string {
	var b strings.Builder
	last := 0
	for _, m := range valueRE.FindAllStringIndex(s, -1) {
		start, end := m[0], m[1]
		v := s[start:end]
		if lead := len(v) - len(strings.TrimLeft(v, " \t(")); lead > 0 { // a path's leading space or parenthesis
			start += lead
			v = v[lead:]
		}
		if strings.Contains(v, "://") {
			trimmed := strings.TrimRight(v, ".,;:)")
			end -= len(v) - len(trimmed)
			v = trimmed
		}
		switch {
		case strings.HasPrefix(v, `"`):
			v = strings.Trim(v, `"`)
		case valueWord(v, names):
		case strings.ContainsAny(v, "/:$"):
		default:
			continue
		}
		b.WriteString(cell(s[last:start]))
		b.WriteString("`" + strings.ReplaceAll(v, "|", `\|`) + "`")
		last = end
	}
	b.WriteString(cell(s[last:]))
	return b.String()
}

// valueWord says whether a word of letters joined by dots or underscores
// is a value: an underscore, an option name or the tail of one's path, or
// a file name.
func valueWord(v string, names map[string]bool) bool {
	if !strings.ContainsAny(v, "._") || strings.ContainsAny(v, "/:$") {
		return false
	}
	if strings.Contains(v, "_") || names[v] {
		return true
	}
	for _, ext := range fileExt {
		if strings.HasSuffix(v, ext) {
			return true
		}
	}
	return false
}

// optionNames are every option path and every dotted tail of one, with
// the [] and <name> of lists and maps left out: audit.file,
// upstream_oauth2.scopes.
func optionNames(opts []Option) map[string]bool {
	names := make(map[string]bool)
	for _, o := range opts {
		parts := strings.Split(strings.NewReplacer("[]", "", ".<name>", "").Replace(o.Path), ".")
		for i := range parts {
			names[strings.Join(parts[i:], ".")] = true
		}
	}
	return names
}

// dropFieldName turns a Go doc comment, which starts with the field's Go
// name, into an operator's description: "Listen is the address ..." becomes
// "The address ...", "Server makes the route ..." becomes "Makes the route
// ...". Other openings, such as "Scopes are requested ...", stay as written.
func dropFieldName(desc, name string) string {
	rest, ok := strings.CutPrefix(desc, name+" ")
	if !ok {
		return desc
	}
	word, after, _ := strings.Cut(rest, " ")
	switch {
	case word == "is" || word == "are":
		next, _, _ := strings.Cut(after, " ")
		switch next {
		case "the", "a", "an":
			rest = after
		default:
			return desc
		}
	case strings.HasSuffix(word, "s") && len(word) > 2:
		// a verb: "makes", "says", "lets"
	default:
		return desc
	}
	return strings.ToUpper(rest[:1]) + rest[1:]
}

// Options walks the struct tree of t the way the configuration decoder does
// (exported fields named by their yaml tag; pointers, lists and maps
// followed) and
// describes every option, with the doc comment of its field. source maps a
// package path to the directory of its source; types whose source it does
// not find get no description, and a field of this module without a doc
// comment is an error, because the comment is the documentation.
func Options(t reflect.Type, source func(pkgPath string) (string, bool)) ([]Option, error) {
	w := &optionWalker{source: source, docs: make(map[string]map[string]map[string]string)}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct", t)
	}
	if err := w.structure(t, "", map[reflect.Type]bool{}); err != nil {
		return nil, err
	}
	return w.out, nil
}

type optionWalker struct {
	source func(string) (string, bool)
	docs   map[string]map[string]map[string]string // package → type → field → doc
	out    []Option
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func (w *optionWalker) structure(t reflect.Type, prefix string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return fmt.Errorf("%s refers to itself; the reference cannot list it", t)
	}
	seen[t] = true
	defer delete(seen, t)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		// Exactly the fields proxy/config's decoder reads: exported, with
		// a yaml name (it has no inline fields).
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		doc, err := w.fieldDoc(t, f.Name)
		if err != nil {
			return err
		}
		desc, def := splitDefault(doc)
		desc = dropFieldName(desc, f.Name)
		typ, children := describeType(f.Type)
		if def == "" {
			def = zeroDefault(f.Type)
		}
		w.out = append(w.out, Option{Path: path, Type: typ, Default: def, Description: desc})
		if children != nil {
			if err := w.structure(children.t, path+children.suffix, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// child is a struct whose fields are options below a field.
type child struct {
	t      reflect.Type
	suffix string // "" for a struct, "[]" for a list, ".<name>" for a map
}

// describeType names a field's type for operators and says whether its
// options continue below it.
func describeType(t reflect.Type) (string, *child) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isScalar(t) {
		return scalarName(t), nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return "object", &child{t: t}
	case reflect.Slice, reflect.Array:
		elem, c := describeType(t.Elem())
		if c != nil {
			c.suffix = "[]" + c.suffix
		}
		return "list of " + plural(elem), c
	case reflect.Map:
		elem, c := describeType(t.Elem())
		if c != nil {
			c.suffix = ".<name>" + c.suffix
		}
		return "map of " + scalarName(t.Key()) + " to " + elem, c
	}
	return scalarName(t), nil
}

func isScalar(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	p := reflect.PointerTo(t)
	if p.Implements(textUnmarshaler) || p.Implements(yamlUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Array, reflect.Map, reflect.Pointer:
		return false
	}
	return true
}

func scalarName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct:
		return "object"
	}
	return "string"
}

func plural(s string) string {
	switch {
	case strings.HasPrefix(s, "list of "), strings.HasPrefix(s, "map of "):
		return s
	case s == "boolean":
		return "booleans"
	}
	return s + "s"
}

func zeroDefault(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "`false`"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if t == durationType {
			return ""
		}
		return "`0`"
	}
	return ""
}

var (
	defaultIntro = regexp.MustCompile(`^Defaults?(?: to| is)?:?\s+(.+?)\.?$`)
	quoted       = regexp.MustCompile(`^"([^"]*)"$`)
)

// splitDefault takes the sentence that starts with "Default" (such as
// `Default ":443".` or `Default: openid, email, profile.`) out of a doc
// comment and returns the rest and the default. A quoted default becomes a
// code span.
func splitDefault(doc string) (desc, def string) {
	var kept []string
	for _, s := range sentences(strings.Join(strings.Fields(doc), " ")) {
		if m := defaultIntro.FindStringSubmatch(s); m != nil && def == "" {
			v := strings.TrimSpace(m[1])
			if q := quoted.FindStringSubmatch(v); q != nil {
				v = "`" + q[1] + "`"
			} else if !strings.ContainsAny(v, " `") {
				v = "`" + v + "`"
			}
			def = v
			continue
		}
		kept = append(kept, s)
	}
	return strings.Join(kept, " "), def
}

// sentences splits text after every '.', '!' or '?' that is followed by a
// space or the end and is not inside double quotes.
func sentences(text string) []string {
	var out []string
	inQuote := false
	start := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '!' || c == '?') && (i+1 == len(text) || text[i+1] == ' '):
			out = append(out, strings.TrimSpace(text[start:i+1]))
			start = i + 1
		}
	}
	if rest := strings.TrimSpace(text[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// fieldDoc returns the doc comment of field name of struct t, read from
// its package's source.
func (w *optionWalker) fieldDoc(t reflect.Type, name string) (string, error) {
	pkg := t.PkgPath()
	if pkg == "" || t.Name() == "" {
		return "", fmt.Errorf("%s: options must be fields of named struct types, so that their doc comments can be found", t)
	}
	docs, ok := w.docs[pkg]
	if !ok {
		dir, found := w.source(pkg)
		if !found {
			return "", nil
		}
		var err error
		if docs, err = fieldDocs(dir); err != nil {
			return "", err
		}
		w.docs[pkg] = docs
	}
	doc := strings.TrimSpace(docs[t.Name()][name])
	if doc == "" {
		return "", fmt.Errorf("%s.%s has no doc comment: the comment is the option's documentation in the configuration reference", t, name)
	}
	return doc, nil
}

// fieldDocs parses the Go files of dir and returns the doc comment (or
// else the line comment) of every field of every struct type.
func fieldDocs(dir string) (map[string]map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	out := make(map[string]map[string]string)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			fields := make(map[string]string)
			for _, fl := range st.Fields.List {
				text := fl.Doc.Text()
				if text == "" {
					text = fl.Comment.Text()
				}
				for _, n := range fl.Names {
					fields[n.Name] = text
				}
				if len(fl.Names) == 0 { // embedded
					fields[embeddedName(fl.Type)] = text
				}
			}
			out[ts.Name.Name] = fields
			return true
		})
	}
	return out, nil
}

func embeddedName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return embeddedName(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.Ident:
		return x.Name
	}
	return ""
}
