package apierror

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// statusNames maps the net/http constants call sites use to their values.
var statusNames = map[string]int{
	"StatusBadRequest": http.StatusBadRequest, "StatusUnauthorized": http.StatusUnauthorized,
	"StatusForbidden": http.StatusForbidden, "StatusNotFound": http.StatusNotFound,
	"StatusMethodNotAllowed": http.StatusMethodNotAllowed, "StatusRequestEntityTooLarge": http.StatusRequestEntityTooLarge,
	"StatusTooManyRequests": http.StatusTooManyRequests, "StatusInternalServerError": http.StatusInternalServerError,
	"StatusBadGateway": http.StatusBadGateway, "StatusServiceUnavailable": http.StatusServiceUnavailable,
	"StatusGatewayTimeout": http.StatusGatewayTimeout, "StatusUnsupportedMediaType": http.StatusUnsupportedMediaType,
}

// TestNoCallSiteOverrulesTheCatalog reads every product file of the proxy:
// an error's status comes from the catalog, so no file outside this
// package sets Error.Status itself, and every WithStatus names, on the
// error of New or Wrap it is called on, a status the catalog lists for
// that code (Entry.Also).
func TestNoCallSiteOverrulesTheCatalog(t *testing.T) {
	codes := map[string]Entry{}
	for _, e := range Catalog() {
		codes[codeConst(e.Code)] = e
	}
	checked := 0
	for _, dir := range []string{"../../proxy", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				strings.HasPrefix(filepath.ToSlash(path), "../../proxy/apierror/") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if isSel(n.Type, "apierror", "Error") && hasKey(n, "Status") {
						t.Errorf("%s: sets apierror.Error's Status itself; use apierror.New or Wrap (the catalog's status) and WithStatus", path)
					}
				case *ast.CallExpr:
					checkWithStatus(t, path, n, codes)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("read only %d files; the walk missed the proxy's sources", checked)
	}
}

func checkWithStatus(t *testing.T, path string, call *ast.CallExpr, codes map[string]Entry) {
	t.Helper()
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "WithStatus" || len(call.Args) != 1 {
		return
	}
	status, ok := call.Args[0].(*ast.SelectorExpr)
	inner, ok2 := sel.X.(*ast.CallExpr)
	if !ok || !ok2 || !(isSel(inner.Fun, "apierror", "New") || isSel(inner.Fun, "apierror", "Wrap")) {
		t.Errorf("%s: WithStatus must be called on apierror.New or Wrap with an http.Status constant, so this test can read it", path)
		return
	}
	i := 0
	if isSel(inner.Fun, "apierror", "Wrap") {
		i = 1
	}
	code, ok := inner.Args[i].(*ast.SelectorExpr)
	if !ok {
		t.Errorf("%s: WithStatus on an error whose code is not a catalog constant", path)
		return
	}
	e, known := codes[code.Sel.Name]
	if v := statusNames[status.Sel.Name]; !known || !slices.Contains(e.Also, v) {
		t.Errorf("%s: %s with %s: the catalog lists %v for that code", path, code.Sel.Name, status.Sel.Name, append([]int{e.Status}, e.Also...))
	}
}

func isSel(x ast.Expr, pkg, name string) bool {
	s, ok := x.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == pkg && s.Sel.Name == name
}

func hasKey(c *ast.CompositeLit, key string) bool {
	for _, el := range c.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == key {
				return true
			}
		}
	}
	return false
}

// codeConst is the name of a code's constant: the catalog's constants are
// Code followed by the code in CamelCase, which the test cannot derive, so
// it reads them from this package's source.
func codeConst(c Code) string { return constNames()[c] }

var constCache map[Code]string

func constNames() map[Code]string {
	if constCache != nil {
		return constCache
	}
	constCache = map[Code]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "apierror.go", nil, 0)
	if err != nil {
		panic(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(n.Name, "Code") {
						constCache[Code(strings.Trim(lit.Value, `"`))] = n.Name
					}
				}
			}
		}
	}
	return constCache
}
