package sitetest

import (
	"encoding/json"
	"fmt"
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
	write(filepath.Join(src, "generated", "content", "verified-examples.md"), []byte("---\ntitle: Verified examples\nbuild:\n  list: never\n---\n"))
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
	sc := []docgen.SiteScenario{{Name: "It works", Status: status, FeaturePage: "/features/demo", Anchor: "scenario-it-works"}}
	return &docgen.SiteData{
		Provenance: docgen.SiteProvenance{Provenance: results.Provenance{Commit: "0123456789", Stack: "local",
			Runs:  []results.Run{{Command: "make conformance STACK=local", Stack: "local", Filter: "@doc:page", Commit: "0123456789", Passed: 1}},
			Parts: []results.Part{{Name: "redis-server", Kind: "embedded"}}}, Short: "0123456"},
		Examples: map[string]docgen.SiteExample{id: {Page: "page.md", Status: status, Stack: "local", Scenarios: sc, Badge: sc}},
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
	for _, want := range []string{`data-example-id="tiny-example"`, `class="badge verified"`, `href="/features/demo/#scenario-it-works"`, "on the <span class=\"stack\">local</span> stack", ">0123456</code>",
		`data-command="make conformance STACK=local"`, "<code>make conformance STACK=local</code> on the local stack", "tag filter <code>@doc:page</code>", "1 passed, 0 failed", `data-part="redis-server" data-kind="embedded"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s:\n%s", want, html)
		}
	}

	// A badge names the first few scenarios and links the rest.
	many := verified("tiny-example", results.Passed)
	e := many.Examples["tiny-example"]
	for i := 2; i <= 5; i++ {
		e.Scenarios = append(e.Scenarios, docgen.SiteScenario{Name: fmt.Sprint("Also ", i), Status: results.Passed, FeaturePage: "/features/demo", Anchor: fmt.Sprint("s", i)})
	}
	e.Badge, e.More = e.Scenarios[:docgen.BadgeScenarios], len(e.Scenarios)-docgen.BadgeScenarios
	many.Examples["tiny-example"] = e
	out, html, err = buildTiny(t, tinyPage, many)
	if err != nil {
		t.Fatalf("building an example of five scenarios: %v\n%s", err, out)
	}
	if n := strings.Count(html, `class="scenario"`); n != docgen.BadgeScenarios || !strings.Contains(html, `href="/verified-examples/#tiny-example">2 more</a>`) {
		t.Errorf("a badge of five scenarios names %d and links the rest: %v\n%s", n, strings.Contains(html, "2 more"), html)
	}

	// An example left out by the run's stack says so, with the command.
	left := verified("tiny-example", results.Passed)
	left.Examples["tiny-example"] = docgen.SiteExample{Page: "page.md", Status: docgen.LeftOut, Why: "its scenario needs the container stack", Command: "make conformance STACK=containers"}
	out, html, err = buildTiny(t, tinyPage, left)
	if err != nil {
		t.Fatalf("building a left-out example: %v\n%s", err, out)
	}
	if !strings.Contains(html, `class="badge left-out"`) || !strings.Contains(html, "<code>make conformance STACK=containers</code> runs it") || strings.Contains(html, "badge verified") {
		t.Errorf("the left-out example's badge:\n%s", html)
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
