package docexamples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	page := "# T\n\n```yaml {id=\"one\"}\na: 1\n  b: 2\n```\n\n```sh\nnot identified\n```\n\n````text {id=\"two\" class=\"x\"}\n```\ninner fence\n````\n"
	got, err := Parse("docs/page.md", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	want := []*Example{
		{ID: "one", Lang: "yaml", Page: "page", File: "docs/page.md", Line: 3, Body: "a: 1\n  b: 2\n"},
		{ID: "two", Lang: "text", Page: "page", File: "docs/page.md", Line: 12, Body: "```\ninner fence\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestLoadRejectsDuplicatesAndBadIDs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", "```yaml {id=\"x\"}\n1\n```\n")
	write("b.md", "```yaml {id=\"x\"}\n2\n```\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `example id "x" is already used`) {
		t.Errorf("Load with a duplicate id: err = %v", err)
	}
	write("b.md", "```yaml {id=\"Bad_ID\"}\n2\n```\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "lower-case") {
		t.Errorf("Load with a bad id: err = %v", err)
	}
	write("b.md", "```yaml {id=\"y\"}\n2\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no closing fence") {
		t.Errorf("Load with an open fence: err = %v", err)
	}
}

// TestRepositoryDocs loads the real docs: every id is unique and well formed.
func TestRepositoryDocs(t *testing.T) {
	s, err := Load("../../docs")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.IDs()) == 0 {
		t.Fatal("the docs have no identified examples")
	}
	if _, err := s.Get("no-such-example"); err == nil {
		t.Error("Get of an unknown id succeeded")
	}
}
