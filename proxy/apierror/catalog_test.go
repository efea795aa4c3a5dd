package apierror

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the error code table in docs/troubleshooting.md from the catalog")

const (
	docPath    = "../../docs/troubleshooting.md"
	startMark  = "<!-- error-codes:start -->"
	endMark    = "<!-- error-codes:end -->"
	tableHeads = "| Code | HTTP status | Meaning |\n|---|---|---|\n"
)

func table() string {
	var b strings.Builder
	b.WriteString(tableHeads)
	for _, e := range Catalog() {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", e.Code, e.Status, e.Meaning)
	}
	return b.String()
}

// TestDocsErrorTable keeps the docs' error code table equal to the
// catalog. Run with -update after changing the catalog.
func TestDocsErrorTable(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, startMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s ... %s markers", docPath, startMark, endMark)
	}
	got := s[i+len(startMark)+1 : j]
	want := table()
	if got == want {
		return
	}
	if *update {
		s = s[:i+len(startMark)+1] + want + s[j:]
		if err := os.WriteFile(docPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the error code table in %s differs from Catalog(); run: go test ./proxy/apierror -run TestDocsErrorTable -update\n--- docs\n%s--- code\n%s", docPath, got, want)
}

func TestCatalogCodesUnique(t *testing.T) {
	seen := map[Code]bool{}
	for _, e := range Catalog() {
		if seen[e.Code] {
			t.Errorf("code %s appears twice", e.Code)
		}
		seen[e.Code] = true
		if e.Status < 400 || e.Meaning == "" {
			t.Errorf("code %s: status %d, meaning %q", e.Code, e.Status, e.Meaning)
		}
	}
}
