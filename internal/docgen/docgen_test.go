package docgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

// TestDocsAgreeWithCode is the check of every generated table in docs/:
// the configuration reference against proxy/config's structs, the feature
// file list against features/. It fails when a page and the code disagree;
// make docs rewrites the pages.
func TestDocsAgreeWithCode(t *testing.T) {
	if err := Check(Generators, "../..", "../../docs"); err != nil {
		t.Fatal(err)
	}
}

// The test's own configuration tree: every shape the walker must handle.

// testRoot is a configuration file.
type testRoot struct {
	// Name is what the thing is called. Default "demo".
	Name string `yaml:"name"`
	// Enabled turns it on.
	Enabled bool `yaml:"enabled"`
	// Retries is how often it tries again. Default: 3.
	Retries int `yaml:"retries"`
	// Timeout bounds one try. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Child is a nested block.
	Child testChild `yaml:"child"`
	// Optional is a block that may be absent.
	Optional *testChild `yaml:"optional"`
	// Items are repeated blocks.
	Items []testItem `yaml:"items"`
	// Named are blocks by name.
	Named map[string]*testItem `yaml:"named"`
	// Tags are plain values.
	Tags []string `yaml:"tags"`
	// Inline is skipped: the decoder reads no inline fields.
	testInline `yaml:",inline"`
	// Skipped is not part of the file.
	Skipped string `yaml:"-"`
	// NoTag is not part of the file either: the decoder needs a yaml name.
	NoTag  string
	hidden string
}

// testChild is nested.
type testChild struct {
	// Path is a file; a | in a description is escaped, and so is <this>.
	Path string `yaml:"path"`
}

// testItem is an element.
type testItem struct {
	// ID names the element. Defaults to "x.y". A second sentence stays.
	ID string `yaml:"id"`
}

type testInline struct {
	// Flat would sit at the level of its parent.
	Flat string `yaml:"flat"`
}

func thisPackage(pkg string) (string, bool) {
	if pkg == ModulePath+"/internal/docgen" {
		return ".", true
	}
	return "", false
}

func TestOptionsWalksEveryShape(t *testing.T) {
	_ = testRoot{hidden: ""}
	got, err := Options(reflect.TypeFor[testRoot](), thisPackage)
	if err != nil {
		t.Fatal(err)
	}
	want := []Option{
		{"name", "string", "`demo`", "Name is what the thing is called."},
		{"enabled", "boolean", "`false`", "Turns it on."},
		{"retries", "integer", "`3`", "Retries is how often it tries again."},
		{"timeout", "duration", "`10s`", "Bounds one try."},
		{"child", "object", "", "A nested block."},
		{"child.path", "string", "", "A file; a | in a description is escaped, and so is <this>."},
		{"optional", "object", "", "A block that may be absent."},
		{"optional.path", "string", "", "A file; a | in a description is escaped, and so is <this>."},
		{"items", "list of objects", "", "Items are repeated blocks."},
		{"items[].id", "string", "`x.y`", "Names the element. A second sentence stays."},
		{"named", "map of string to object", "", "Named are blocks by name."},
		{"named.<name>.id", "string", "`x.y`", "Names the element. A second sentence stays."},
		{"tags", "list of strings", "", "Tags are plain values."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Options (-want +got):\n%s", diff)
	}
	table := OptionTable(got)
	for _, s := range []string{
		"| `name` | string | `demo` | Name is what the thing is called. |",
		"| `child.path` | string | — | A file; a \\| in a description is escaped, and so is &lt;this&gt;. |",
		"| `named.<name>.id` | string | `x.y` |",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("the table lacks %q:\n%s", s, table)
		}
	}
}

// testUndocumented has a field without a doc comment.
type testUndocumented struct {
	Bare string `yaml:"bare"`
}

func TestOptionsNeedsDocComments(t *testing.T) {
	_, err := Options(reflect.TypeFor[testUndocumented](), thisPackage)
	if err == nil || !strings.Contains(err.Error(), "testUndocumented.Bare has no doc comment") {
		t.Errorf("err = %v, want one about the missing doc comment", err)
	}
}

func TestSplitDefault(t *testing.T) {
	for _, tc := range []struct{ doc, desc, def string }{
		{`Listen is the address. Default ":443".`, "Listen is the address.", "`:443`"},
		{"Scopes are requested. Default: openid, email, profile.", "Scopes are requested.", "openid, email, profile"},
		{`Path is "a. b". Default "x. y". More.`, `Path is "a. b". More.`, "`x. y`"},
		{"No default here.", "No default here.", ""},
	} {
		desc, def := splitDefault(tc.doc)
		if desc != tc.desc || def != tc.def {
			t.Errorf("splitDefault(%q) = %q, %q; want %q, %q", tc.doc, desc, def, tc.desc, tc.def)
		}
	}
}

func TestCheckAndUpdate(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	gens := map[string]Generator{"numbers": func(string) (string, error) { return "| n |\n|---|\n| 1 |\n", nil }}
	stale := "# Page\n\n<!-- BEGIN GENERATED numbers: run make docs -->\n| n |\n|---|\n| 2 |\n<!-- END GENERATED numbers -->\n\nAfter.\n"
	if err := os.WriteFile(page, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Check(gens, ".", dir)
	if err == nil || !strings.Contains(err.Error(), "page.md:3: the generated block numbers disagrees with the code; run make docs") ||
		!strings.Contains(err.Error(), "  - | 2 |") || !strings.Contains(err.Error(), "  + | 1 |") {
		t.Fatalf("Check of a stale block: %v", err)
	}
	if err := Update(gens, ".", dir); err != nil {
		t.Fatal(err)
	}
	if err := Check(gens, ".", dir); err != nil {
		t.Fatalf("Check after Update: %v", err)
	}
	b, _ := os.ReadFile(page)
	want := "# Page\n\n<!-- BEGIN GENERATED numbers: run make docs -->\n\n| n |\n|---|\n| 1 |\n\n<!-- END GENERATED numbers -->\n\nAfter.\n"
	if string(b) != want {
		t.Errorf("after Update:\n%s\nwant:\n%s", b, want)
	}

	// A generator no page shows, and a block no generator makes.
	gens["missing"] = gens["numbers"]
	if err := Check(gens, ".", dir); err == nil || !strings.Contains(err.Error(), "no page under") {
		t.Errorf("Check with an unused generator: %v", err)
	}
	delete(gens, "missing")
	if err := os.WriteFile(filepath.Join(dir, "other.md"), []byte("<!-- BEGIN GENERATED nope -->\n<!-- END GENERATED nope -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(gens, ".", dir); err == nil || !strings.Contains(err.Error(), `no generator called "nope"`) {
		t.Errorf("Check with an unknown generator: %v", err)
	}
}

func TestFindBlocksRefusesBrokenMarkers(t *testing.T) {
	for _, src := range []string{
		"<!-- BEGIN GENERATED a -->\n",
		"<!-- END GENERATED a -->\n",
		"<!-- BEGIN GENERATED a -->\n<!-- BEGIN GENERATED b -->\n",
		"<!-- GENERATED a -->\n",
	} {
		if _, err := FindBlocks("p.md", []byte(src)); err == nil {
			t.Errorf("FindBlocks(%q) succeeded", src)
		}
	}
}

const testFeature = `@doc:quickstart
Feature: Demo: a feature
  Its description, with ` + "`code`" + `.
    Indented more.

  Background:
    Given a stack

  Scenario: The first one
    When something happens
    Then it shows

  Scenario: Not yet run
    When nothing happens

  Scenario Outline: Many <n>
    Given the number <n>

    Examples:
      | n |
      | 1 |
      | 2 |
`

func TestParseFeature(t *testing.T) {
	f, err := ParseFeature("features/demo.feature", []byte(testFeature))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "Demo: a feature" || f.Slug != "demo" || f.Description != "Its description, with `code`.\n  Indented more." {
		t.Errorf("feature = %q %q %q", f.Name, f.Slug, f.Description)
	}
	var anchors []string
	for _, s := range f.Scenarios {
		anchors = append(anchors, s.Anchor)
	}
	if diff := cmp.Diff([]string{"scenario-the-first-one", "scenario-not-yet-run", "scenario-many-n"}, anchors); diff != "" {
		t.Errorf("anchors (-want +got):\n%s", diff)
	}
	dup := testFeature + "\n  Scenario: The first one\n    Then it is ambiguous\n"
	if _, err := ParseFeature("features/demo.feature", []byte(dup)); err == nil || !strings.Contains(err.Error(), `"The first one" is already used on line 9`) {
		t.Errorf("ParseFeature with a duplicate scenario name: %v", err)
	}
	if got := f.Scenarios[2].Examples; len(got) != 1 || len(got[0]) != 3 {
		t.Errorf("outline examples = %v", got)
	}
	if len(f.Background) != 1 || f.Background[0].Keyword != "Given" {
		t.Errorf("background = %+v", f.Background)
	}
}

func siteInput(t *testing.T) SiteInput {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "quickstart.md"), []byte("```yaml {id=\"ex-a\"}\na: 1\n```\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := docexamples.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFeature("features/demo.feature", []byte(testFeature))
	if err != nil {
		t.Fatal(err)
	}
	passed := func(text string) results.Step { return results.Step{Text: text, Status: "passed"} }
	m := &results.Manifest{
		Provenance: results.Provenance{Commit: "0123456789abcdef", Stack: "local", Passed: 3, Failed: 1},
		Examples: map[string]results.ExampleResult{
			"ex-a": {Page: "quickstart", Status: "passed", Scenarios: []results.ScenarioRef{{Name: "The first one", Feature: "features/demo.feature", Status: "passed"}}},
		},
		Scenarios: []results.Scenario{
			{Name: "The first one", Feature: "features/demo.feature", Status: "passed", Examples: []string{"ex-a"},
				Steps: []results.Step{passed("a stack"), passed("something happens"), passed("it shows")}},
			{Name: "Many <n>", Feature: "features/demo.feature", Status: "passed"},
			{Name: "Many <n>", Feature: "features/demo.feature", Status: "failed", Error: "boom"},
		},
	}
	return SiteInput{Manifest: m, Docs: docs, DocsDir: dir, Features: []*Feature{f}}
}

func TestWriteSite(t *testing.T) {
	in := siteInput(t)
	out := filepath.Join(t.TempDir(), "generated")
	sum, err := WriteSite(out, in)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Examples != 1 || sum.Verified != 1 || sum.Features != 1 || sum.Scenarios != 3 {
		t.Errorf("summary = %+v", sum)
	}
	var data SiteData
	readJSON(t, filepath.Join(out, "data", "results.json"), &data)
	sc := []SiteScenario{{Name: "The first one", Status: "passed", FeaturePage: "/features/demo", Anchor: "scenario-the-first-one"}}
	wantEx := SiteExample{Page: "quickstart.md", Status: "passed", Stack: "local", Scenarios: sc, Badge: sc}
	if diff := cmp.Diff(wantEx, data.Examples["ex-a"]); diff != "" {
		t.Errorf("ex-a (-want +got):\n%s", diff)
	}
	all, err := os.ReadFile(filepath.Join(out, "content", "verified-examples.md"))
	if err != nil || !strings.Contains(string(all), "- [The first one](../features/demo.feature#scenario-the-first-one) (passed)") {
		t.Errorf("the verified examples page (%v):\n%s", err, all)
	}
	if data.Provenance.Short != "0123456" {
		t.Errorf("short commit = %q", data.Provenance.Short)
	}

	var page struct {
		Title  string `json:"title"`
		Params struct {
			Feature featureView `json:"feature"`
		} `json:"params"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "content", "features", "demo.md"))
	if err != nil {
		t.Fatal(err)
	}
	front, body, _ := strings.Cut(string(raw), "\n}\n")
	if err := json.Unmarshal([]byte(front+"\n}"), &page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "Its description") {
		t.Errorf("the page's body lacks the description: %q", body)
	}
	fv := page.Params.Feature
	var statuses []string
	for _, s := range fv.Scenarios {
		statuses = append(statuses, s.Status)
	}
	if diff := cmp.Diff([]string{"passed", NotRun, "failed"}, statuses); diff != "" {
		t.Errorf("scenario statuses (-want +got):\n%s", diff)
	}
	if fv.Status != "failed" || fv.Passed != 1 || fv.Failed != 1 || fv.NotRun != 1 {
		t.Errorf("feature status = %s %d/%d/%d", fv.Status, fv.Passed, fv.Failed, fv.NotRun)
	}
	first := fv.Scenarios[0]
	if len(first.Steps) != 3 || !first.Steps[0].Background || first.Steps[2].Status != "passed" {
		t.Errorf("first scenario's steps = %+v", first.Steps)
	}
	if len(first.ExampleLinks) != 1 || first.ExampleLinks[0] != (exampleLink{ID: "ex-a", Page: "quickstart.md"}) {
		t.Errorf("first scenario's examples = %+v", first.ExampleLinks)
	}
	if _, err := os.Stat(filepath.Join(out, "content", "features", "_index.md")); err != nil {
		t.Error(err)
	}
}

func TestSiteDataRefusesStaleResults(t *testing.T) {
	in := siteInput(t)
	in.Manifest.Examples["ex-a"] = results.ExampleResult{Status: "passed", Scenarios: []results.ScenarioRef{{Name: "Renamed since", Feature: "features/demo.feature", Status: "passed"}}}
	in.Manifest.Examples["gone"] = results.ExampleResult{Status: "passed"}
	_, _, err := BuildSiteData(in)
	if err == nil || !strings.Contains(err.Error(), `scenario "Renamed since"`) || !strings.Contains(err.Error(), `example "gone"`) {
		t.Errorf("BuildSiteData with stale results: %v", err)
	}
}

func TestRenderDiagrams(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.d2"), []byte("a -> b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls []string
	names, err := RenderDiagrams(src, out, func(s, d string) error {
		calls = append(calls, filepath.Base(s)+">"+filepath.Base(d))
		return nil
	})
	if err != nil || len(names) != 1 || names[0] != "a.svg" || len(calls) != 1 || calls[0] != "a.d2>a.svg" {
		t.Errorf("RenderDiagrams = %v, %v (calls %v)", names, err, calls)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// Values in the configuration reference are code: an address with an @
// left as text would render as a mailto: link, a ${VAR} as prose.
func TestOptionTableWritesValuesAsCode(t *testing.T) {
	opts := []Option{
		{Path: "storage.redis_url", Type: "string", Description: "The Redis server, such as redis://:${REDIS_PASSWORD}@redis.internal:6379/0. Several proxies share it."},
		{Path: "audit.file", Type: "string", Default: `127.0.0.1:9464; "off" turns it off`, Description: "Needs audit.file and per_user; see https://<from host>/cb, e.g. mcp-proxy.key at /metrics."},
	}
	table := OptionTable(opts)
	for _, want := range []string{
		"such as `redis://:${REDIS_PASSWORD}@redis.internal:6379/0`. Several",
		"| `127.0.0.1:9464`; `off` turns it off |",
		"Needs `audit.file` and `per_user`; see `https://<from host>/cb`, e.g. `mcp-proxy.key` at `/metrics`.",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	// Outside code spans, no @ is left for a renderer to link.
	for _, line := range strings.Split(table, "\n") {
		parts := strings.Split(line, "`")
		for i := 0; i < len(parts); i += 2 {
			if strings.Contains(parts[i], "@") {
				t.Errorf("an @ outside code in %q", line)
			}
		}
	}
}

// An example that no scenario of the results ran: published with its
// reason only when its scenarios need a stack the run did not have;
// otherwise the build fails, saying what to run.
func TestMissingExamplesSayWhatRunsThem(t *testing.T) {
	dir := t.TempDir()
	page := "```yaml {id=\"ex-a\"}\na: 1\n```\n\n```sh {id=\"ex-docker\"}\ndocker run\n```\n\n```yaml {id=\"ex-other\"}\nb: 1\n```\n\n```yaml {id=\"ex-none\"}\nc: 1\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "quickstart.md"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := docexamples.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(file, src string) *Feature {
		f, err := ParseFeature(file, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	feats := []*Feature{
		parse("features/demo.feature", testFeature),
		parse("features/containers.feature", "@doc:containers @containers\nFeature: C\n  Scenario: Docker\n    When the operator runs the documented \"ex-docker\"\n"),
		parse("features/other.feature", "@doc:other\nFeature: O\n  Scenario: Other\n    Given the operator configuration \"ex-other\"\n"),
	}
	manifest := func(filter string) *results.Manifest {
		rec := &results.Recorder{}
		tags := "~@containers"
		if filter != "" {
			tags = filter + " && ~@containers"
		}
		rec.StartRun("make conformance", "local", filter, tags)
		rec.LeaveOut(1, "@containers")
		rec.Add(results.Scenario{Name: "The first one", Feature: "features/demo.feature", Status: "passed", Examples: []string{"ex-a"}, Steps: []results.Step{{Text: "x", Status: "passed"}}})
		if filter == "" {
			rec.Add(results.Scenario{Name: "Other", Feature: "features/other.feature", Status: "passed", Examples: []string{"ex-other"}, Steps: []results.Step{{Text: "x", Status: "passed"}}})
		}
		return rec.Manifest(nil, func(string) string { return "quickstart" }, dir)
	}

	// Every scenario ran but one names no example: the build fails on ex-none only.
	_, _, err = BuildSiteData(SiteInput{Manifest: results.Merge(manifest("")), Docs: docs, DocsDir: dir, Features: feats})
	if err == nil || !strings.Contains(err.Error(), `example "ex-none" is run by no scenario: write a scenario`) || strings.Contains(err.Error(), "ex-docker") {
		t.Errorf("with ex-none unnamed: %v", err)
	}

	os.WriteFile(filepath.Join(dir, "quickstart.md"), []byte(strings.Replace(page, "```yaml {id=\"ex-none\"}\nc: 1\n```\n", "", 1)), 0o644)
	docs, err = docexamples.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, sum, err := BuildSiteData(SiteInput{Manifest: results.Merge(manifest("")), Docs: docs, DocsDir: dir, Features: feats})
	if err != nil {
		t.Fatalf("a run that left out only the container scenario: %v", err)
	}
	if e := data.Examples["ex-docker"]; e.Status != LeftOut || e.Command != "make conformance STACK=containers" || !strings.Contains(e.Why, "container stack") {
		t.Errorf("ex-docker = %+v", e)
	}
	if len(sum.LeftOut) != 1 || !strings.Contains(sum.LeftOut[0], "make conformance STACK=containers runs it") {
		t.Errorf("summary's left out = %q", sum.LeftOut)
	}

	// A run filtered to other tags: the build fails and says to run every scenario.
	filtered := manifest("@doc:quickstart")
	filtered.Provenance.Runs[0].Command = "make conformance STACK=local TAGS='@doc:quickstart' REPORTS=/tmp/r"
	filtered.Provenance.Command = filtered.Provenance.Runs[0].Command
	_, _, err = BuildSiteData(SiteInput{Manifest: results.Merge(filtered), Docs: docs, DocsDir: dir, Features: feats})
	if err == nil || !strings.Contains(err.Error(), "2 documented examples") || !strings.Contains(err.Error(), ": ex-docker, ex-other;") ||
		!strings.Contains(err.Error(), "tag filter @doc:quickstart") || !strings.Contains(err.Error(), "run make conformance STACK=local REPORTS=/tmp/r (every scenario)") {
		t.Errorf("with a filtered run: %v", err)
	}
}

// A badge names first the scenarios of the features written for the
// example's page, then the others, at most BadgeScenarios of them.
func TestBadgeNamesTheOwnPagesScenariosFirst(t *testing.T) {
	in := siteInput(t)
	other, err := ParseFeature("features/other.feature", []byte("@doc:other\nFeature: Other\n  Scenario: A other\n    Given x\n  Scenario: B other\n    Given x\n  Scenario: C other\n    Given x\n"))
	if err != nil {
		t.Fatal(err)
	}
	in.Features = append(in.Features, other)
	ex := in.Manifest.Examples["ex-a"]
	for _, n := range []string{"A other", "B other", "C other"} {
		ex.Scenarios = append(ex.Scenarios, results.ScenarioRef{Name: n, Feature: "features/other.feature", Status: "passed"})
	}
	sort.Slice(ex.Scenarios, func(i, j int) bool { return ex.Scenarios[i].Name < ex.Scenarios[j].Name })
	in.Manifest.Examples["ex-a"] = ex
	data, _, err := BuildSiteData(in)
	if err != nil {
		t.Fatal(err)
	}
	e := data.Examples["ex-a"]
	var names []string
	for _, s := range e.Badge {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"The first one", "A other", "B other"}, names); diff != "" || e.More != 1 {
		t.Errorf("badge (-want +got):\n%s; more %d, want 1", diff, e.More)
	}
}

// An example whose only scenarios make conformance left out on purpose,
// with a ~TAG in the run's tag filter for a prerequisite the machine lacked
// (Dex and Hydra not built), is published unverified with the command that
// runs it; an example no scenario names still fails the build, and so does
// one the user's own tag filter left out. Once its scenario has run, the
// example carries that scenario's status, failed included.
func TestExamplesLeftOutForAPrerequisiteArePublishedUnverified(t *testing.T) {
	dir := t.TempDir()
	page := "```yaml {id=\"ex-a\"}\na: 1\n```\n\n```yaml {id=\"ex-hydra\"}\nh: 1\n```\n"
	writeDocs := func(page string) *docexamples.Set {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "quickstart.md"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		docs, err := docexamples.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}
	var feats []*Feature
	for file, src := range map[string]string{
		"features/demo.feature":   testFeature,
		"features/tested.feature": "@doc:tested @real-servers @local\nFeature: T\n  Scenario: Behind Hydra\n    Given the operator configuration \"ex-hydra\"\n",
	} {
		f, err := ParseFeature(file, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		feats = append(feats, f)
	}
	passed := []results.Step{{Text: "x", Status: results.Passed}}
	// run is make conformance's run on a fresh clone: the Makefile added
	// ~@real-servers to TAGS, and the local stack ~@containers.
	run := func(filter string) *results.Manifest {
		rec := &results.Recorder{}
		rec.StartRun("make conformance", "local", filter, filter+" && ~@containers")
		rec.Add(results.Scenario{Name: "The first one", Feature: "features/demo.feature", Status: results.Passed, Examples: []string{"ex-a"}, Steps: passed})
		return rec.Manifest(nil, func(string) string { return "quickstart" }, dir)
	}

	docs := writeDocs(page)
	data, sum, err := BuildSiteData(SiteInput{Manifest: results.Merge(run("~@real-servers")), Docs: docs, DocsDir: dir, Features: feats})
	if err != nil {
		t.Fatalf("a run that left out the @real-servers scenarios: %v", err)
	}
	want := SiteExample{Page: "quickstart.md", Status: LeftOut, Scenarios: []SiteScenario{}, Badge: []SiteScenario{},
		Why:     "its scenario needs Dex and Ory Hydra, which the run that made these results had not built",
		Command: "make real-servers"}
	if diff := cmp.Diff(want, data.Examples["ex-hydra"]); diff != "" {
		t.Errorf("ex-hydra (-want +got):\n%s", diff)
	}
	if e := data.Examples["ex-a"]; e.Status != results.Passed || len(e.Scenarios) != 1 {
		t.Errorf("ex-a = %+v, want passed by its one scenario", e)
	}
	if len(sum.LeftOut) != 1 || !strings.HasPrefix(sum.LeftOut[0], "ex-hydra (") || !strings.HasSuffix(sum.LeftOut[0], "; make real-servers runs it") {
		t.Errorf("summary's left out = %q", sum.LeftOut)
	}

	// On the container stack, the @local scenarios run in a second,
	// in-process run, whose filter still has the ~@real-servers.
	rec := &results.Recorder{}
	rec.StartRun("make conformance", "containers", "~@real-servers", "~@real-servers && ~@local")
	rec.LeaveOut(1, "@local")
	rec.Add(results.Scenario{Name: "The first one", Feature: "features/demo.feature", Status: results.Passed, Examples: []string{"ex-a"}, Steps: passed})
	rec.StartRun("make conformance", "local", "~@real-servers", "~@real-servers && @local")
	containers := rec.Manifest(nil, func(string) string { return "quickstart" }, dir)
	data, _, err = BuildSiteData(SiteInput{Manifest: results.Merge(containers), Docs: docs, DocsDir: dir, Features: feats})
	if err != nil {
		t.Fatalf("a container run that left out the @real-servers scenarios: %v", err)
	}
	if diff := cmp.Diff(want, data.Examples["ex-hydra"]); diff != "" {
		t.Errorf("ex-hydra after a container run (-want +got):\n%s", diff)
	}

	// The user's own filter left it out: running every scenario is the answer.
	_, _, err = BuildSiteData(SiteInput{Manifest: results.Merge(run("@doc:quickstart && ~@real-servers")), Docs: docs, DocsDir: dir, Features: feats})
	if err == nil || !strings.Contains(err.Error(), "1 documented examples were run by no scenario because the tag filter") || !strings.Contains(err.Error(), ": ex-hydra;") {
		t.Errorf("with the user's filter @doc:quickstart: %v", err)
	}

	// An example that no scenario names fails the build, left-out tags or not.
	docs = writeDocs(page + "\n```yaml {id=\"ex-drift\"}\nd: 1\n```\n")
	_, _, err = BuildSiteData(SiteInput{Manifest: results.Merge(run("~@real-servers")), Docs: docs, DocsDir: dir, Features: feats})
	if err == nil || !strings.Contains(err.Error(), `example "ex-drift" is run by no scenario: write a scenario`) || strings.Contains(err.Error(), "ex-hydra") {
		t.Errorf("with ex-drift named by no scenario: %v", err)
	}

	// make real-servers ran the scenario, and it failed: the example is
	// failed, not left out, and the site's render hook refuses it.
	docs = writeDocs(page)
	rec = &results.Recorder{}
	rec.StartRun("make conformance STACK=local TAGS=@real-servers", "local", "@real-servers", "@real-servers && ~@containers")
	rec.Add(results.Scenario{Name: "Behind Hydra", Feature: "features/tested.feature", Status: results.Failed, Examples: []string{"ex-hydra"}, Steps: passed})
	realServers := rec.Manifest(nil, func(string) string { return "quickstart" }, dir)
	data, sum, err = BuildSiteData(SiteInput{Manifest: results.Merge(run("~@real-servers"), realServers), Docs: docs, DocsDir: dir, Features: feats})
	if err != nil {
		t.Fatal(err)
	}
	if e := data.Examples["ex-hydra"]; e.Status != results.Failed || len(e.Scenarios) != 1 || e.Scenarios[0].Status != results.Failed {
		t.Errorf("ex-hydra after a failed make real-servers = %+v", e)
	}
	if len(sum.LeftOut) != 0 {
		t.Errorf("summary's left out = %q, want none", sum.LeftOut)
	}
}

func TestWithoutNegated(t *testing.T) {
	for _, tc := range []struct{ expr, tag, want string }{
		{"~@real-servers", "@real-servers", ""},
		{"~@real-servers && ~@containers", "@real-servers", "~@containers"},
		{"@doc:quickstart && ~@real-servers && ~@mcp-remote", "@real-servers", "@doc:quickstart && ~@mcp-remote"},
		{"@a && ~real-servers,@b && ~@real-servers", "@real-servers", "@a,@b"},
		{"@real-servers", "@real-servers", "@real-servers"},
		{"~@real-servers-extra", "@real-servers", "~@real-servers-extra"},
	} {
		if got := withoutNegated(tc.expr, tc.tag); got != tc.want {
			t.Errorf("withoutNegated(%q, %q) = %q, want %q", tc.expr, tc.tag, got, tc.want)
		}
	}
}
