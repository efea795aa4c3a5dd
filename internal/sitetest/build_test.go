package sitetest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/internal/docgen"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

var siteDir = "../../site"

// buildTiny builds a one-page site with the real layouts and hugo.toml
// (Hugo, from site/go.mod) and returns Hugo's output and error.
func buildTiny(t *testing.T, page string, data *docgen.SiteData) (string, string, error) {
	t.Helper()
	site, err := filepath.Abs(siteDir)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	src := filepath.Join(root, "site")
	for _, d := range []string{"layouts", "assets"} {
		if err := os.CopyFS(filepath.Join(src, d), os.DirFS(filepath.Join(site, d))); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(site, "hugo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(src, "hugo.toml"), cfg)
	write(filepath.Join(root, "docs", "page.md"), []byte(page))
	write(filepath.Join(src, "generated", "content", "features", "_index.md"), []byte("---\ntitle: Feature files\n---\n"))
	write(filepath.Join(src, "generated", "content", "features", "demo.md"), []byte("---\ntitle: Demo\n---\n"))
	if err := os.MkdirAll(filepath.Join(src, "generated", "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(src, "generated", "data", "results.json"), b)
	} else if err := os.MkdirAll(filepath.Join(src, "generated", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "public")
	cmd := exec.Command("go", "-C", site, "tool", "hugo", "--source", src, "--destination", out, "--logLevel", "error")
	b, err := cmd.CombinedOutput()
	html, _ := os.ReadFile(filepath.Join(out, "page", "index.html"))
	return string(b), string(html), err
}

func verified(id string, status string) *docgen.SiteData {
	return &docgen.SiteData{
		Provenance: docgen.SiteProvenance{Provenance: results.Provenance{Commit: "0123456789", Stack: "local"}, Short: "0123456"},
		Examples: map[string]docgen.SiteExample{id: {Page: "page.md", Status: status, Scenarios: []docgen.SiteScenario{
			{Name: "It works", Status: status, FeaturePage: "/features/demo", Anchor: "scenario-it-works"},
		}}},
	}
}

const tinyPage = "---\ntitle: Page\n---\n\n# Page\n\n```yaml {id=\"tiny-example\"}\na: 1\n```\n"

// TestBuildPublishesOnlyVerifiedExamples runs the site's own layouts on a
// one-page site: an example that passing scenarios ran gets its badge, and
// the build fails on one that no scenario ran or that a scenario failed.
func TestBuildPublishesOnlyVerifiedExamples(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal(err)
	}
	out, html, err := buildTiny(t, tinyPage, verified("tiny-example", results.Passed))
	if err != nil {
		t.Fatalf("building a verified example: %v\n%s", err, out)
	}
	for _, want := range []string{`data-example-id="tiny-example"`, `class="badge verified"`, `href="/features/demo/#scenario-it-works"`, "on the <span class=\"stack\">local</span> stack", ">0123456</code>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s:\n%s", want, html)
		}
	}

	for name, data := range map[string]*docgen.SiteData{
		"no scenario ran it": verified("another-example", results.Passed),
		"a scenario failed":  verified("tiny-example", results.Failed),
		"no results at all":  nil,
	} {
		out, _, err := buildTiny(t, tinyPage, data)
		if err == nil {
			t.Errorf("%s: the build succeeded", name)
			continue
		}
		if !strings.Contains(out, `example "tiny-example"`) || !strings.Contains(out, "page.md") {
			t.Errorf("%s: the build failed without naming the example and its page:\n%s", name, out)
		}
	}

	// A link to a page that does not exist fails the build too.
	out, _, err = buildTiny(t, "---\ntitle: Page\n---\n\n# Page\n\nSee [nothing](missing.md).\n", verified("x", results.Passed))
	if err == nil || !strings.Contains(out, `the link "missing.md"`) {
		t.Errorf("a broken link: err %v\n%s", err, out)
	}
}
