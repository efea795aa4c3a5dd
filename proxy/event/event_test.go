package event

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCatalogIsTheConstants: every constant of this package is in Catalog,
// once, and Catalog names nothing else.
func TestCatalogIsTheConstants(t *testing.T) {
	declared := declaredNames(t)
	seen := map[Name]bool{}
	for _, d := range Catalog() {
		if seen[d.Event] {
			t.Errorf("Catalog lists %s twice", d.Event)
		}
		seen[d.Event] = true
		if _, ok := declared[d.Event]; !ok {
			t.Errorf("Catalog lists %s, which is no constant of this package", d.Event)
		}
		if d.Level == "" || d.Meaning == "" {
			t.Errorf("%s: level %q, meaning %q", d.Event, d.Level, d.Meaning)
		}
	}
	for n, c := range declared {
		if !seen[n] {
			t.Errorf("constant %s (%s) is not in Catalog", c, n)
		}
	}
}

// TestCodeWritesOnlyTheConstants reads every product file of the proxy:
// an event is written through its constant, never as a string literal
// after an "event" key, and every constant is written somewhere.
func TestCodeWritesOnlyTheConstants(t *testing.T) {
	used := map[string]bool{}
	files := 0
	for _, dir := range []string{"../../proxy", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				strings.HasPrefix(filepath.ToSlash(path), "../../proxy/event/") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			files++
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "event" {
						used[n.Sel.Name] = true
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						if v, _ := strconv.Unquote(n.Value); v == "event" {
							t.Errorf(`%s: writes an "event" key itself; use the event package's constant and its Attr`, path)
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 {
		t.Fatalf("read only %d files; the walk missed the proxy's sources", files)
	}
	for _, c := range declaredNames(t) {
		if !used[c] {
			t.Errorf("event.%s is written by no code", c)
		}
	}
}

// declaredNames maps each Name constant of event.go to its identifier.
func declaredNames(t *testing.T) map[Name]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "event.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Name]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					v, _ := strconv.Unquote(lit.Value)
					out[Name(v)] = id.Name
				}
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("read %d constants from event.go", len(out))
	}
	return out
}
