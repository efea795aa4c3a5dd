package docgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

// NotRun is the status of a scenario that the results manifest does not
// list: it was added after the run, or the run selected other tags.
const NotRun = "not run"

// SiteInput is what the site's generated inputs are made from.
type SiteInput struct {
	Manifest *results.Manifest
	Docs     *docexamples.Set
	// DocsDir is the docs directory the examples were loaded from; example
	// pages are named relative to it.
	DocsDir  string
	Features []*Feature
	// Sources are the manifest files Manifest was read from.
	Sources []string
}

// SiteData is the data file the site's templates read as hugo.Data.results.
type SiteData struct {
	Provenance SiteProvenance         `json:"provenance"`
	Examples   map[string]SiteExample `json:"examples"`
	// Sources are the manifests the data was made from, so that the site's
	// browser test can check the site against them.
	Sources []string `json:"sources"`
}

// LeftOut is the status of an example that no scenario of the results ran
// because every scenario that runs it needs a stack the run did not have,
// or something the run left out on purpose (see prerequisiteTags).
const LeftOut = "left out"

// BadgeScenarios is how many scenarios a badge names; the rest are on the
// verified examples page it links to.
const BadgeScenarios = 3

// ExamplesPage is the Hugo path of the page that lists every example with
// all the scenarios that ran it.
const ExamplesPage = "/verified-examples"

// SiteProvenance is the manifest's provenance plus what a badge shows.
type SiteProvenance struct {
	results.Provenance
	Short string `json:"short"`
}

// SiteExample is what verified one example.
type SiteExample struct {
	// Page is the example's page, relative to the docs directory.
	Page      string         `json:"page"`
	Status    string         `json:"status"`
	Scenarios []SiteScenario `json:"scenarios"`
	// Stack names the stacks its scenarios ran on, joined with "+".
	Stack string `json:"stack"`
	// Badge is what the badge names: the first BadgeScenarios scenarios;
	// More counts the others.
	Badge []SiteScenario `json:"badge"`
	More  int            `json:"more"`
	// Why, for a LeftOut example, says what its scenarios need that the run
	// did not have, and Command the command that runs them.
	Why     string `json:"why,omitempty"`
	Command string `json:"command,omitempty"`
}

// SiteScenario is a scenario as a badge links it.
type SiteScenario struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// FeaturePage is the Hugo path of the feature's page, such as
	// /features/quickstart; Anchor the scenario's id on it.
	FeaturePage string `json:"feature_page"`
	Anchor      string `json:"anchor"`
}

// Summary counts what the site will show.
type Summary struct {
	Examples int // identified examples in the docs
	Verified int // of those, verified by passing scenarios only
	// LeftOut lists the examples published unverified because the run's
	// stack could not run their scenarios, or the run left them out for
	// what the machine lacked, each with the command that runs them.
	LeftOut   []string
	Scenarios int // scenarios in the manifest
	Features  int
}

// BuildSiteData joins the manifest with the docs and the feature files. It
// fails when the manifest names a scenario that the feature files no longer
// have: its badges would point at nothing, so the results are stale.
func BuildSiteData(in SiteInput) (*SiteData, Summary, error) {
	m := in.Manifest
	prov := SiteProvenance{Provenance: m.Provenance, Short: m.Provenance.Commit}
	if len(prov.Short) > 7 {
		prov.Short = prov.Short[:7]
	}
	data := &SiteData{Provenance: prov, Examples: make(map[string]SiteExample), Sources: in.Sources}
	if data.Sources == nil {
		data.Sources = []string{}
	}
	anchors := make(map[[2]string]string) // (feature file, scenario name) → anchor
	verifies := make(map[string][]string) // feature page → the doc pages it verifies
	for _, f := range in.Features {
		for _, s := range f.Scenarios {
			anchors[[2]string{f.File, s.Name}] = s.Anchor
		}
		for _, t := range f.Tags {
			if p, ok := strings.CutPrefix(t, "@doc:"); ok {
				verifies["/features/"+f.Slug] = append(verifies["/features/"+f.Slug], p)
			}
		}
	}
	var errs []error
	reported := make(map[string]bool)
	report := func(err error) {
		if !reported[err.Error()] {
			reported[err.Error()] = true
			errs = append(errs, err)
		}
	}
	sum := Summary{Scenarios: len(m.Scenarios), Features: len(in.Features), Examples: len(in.Docs.IDs())}
	ids := make([]string, 0, len(m.Examples))
	for id := range m.Examples {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ex := m.Examples[id]
		doc, err := in.Docs.Get(id)
		if err != nil {
			// The harness refuses such a scenario; a manifest that has one
			// is from before the example was renamed.
			report(fmt.Errorf("the results manifest names the example %q, which the docs no longer have: run make conformance", id))
			continue
		}
		page, err := filepath.Rel(in.DocsDir, doc.File)
		if err != nil {
			return nil, sum, err
		}
		se := SiteExample{Page: filepath.ToSlash(page), Status: ex.Status}
		for _, s := range ex.Scenarios {
			a, ok := anchors[[2]string{s.Feature, s.Name}]
			if !ok {
				report(fmt.Errorf("the results manifest names the scenario %q of %s, which the feature files no longer have: run make conformance", s.Name, s.Feature))
				continue
			}
			se.Scenarios = append(se.Scenarios, SiteScenario{
				Name: s.Name, Status: s.Status, Anchor: a,
				FeaturePage: "/features/" + strings.TrimSuffix(filepath.Base(s.Feature), ".feature"),
			})
		}
		var stacks []string
		for _, s := range ex.Scenarios {
			st := s.Stack
			if st == "" {
				st = m.Provenance.Stack
			}
			if !slices.Contains(stacks, st) {
				stacks = append(stacks, st)
			}
		}
		se.Stack = strings.Join(stacks, "+")
		// The badge names first the scenarios written for the example's
		// own page.
		own := func(sc SiteScenario) bool {
			return slices.Contains(verifies[sc.FeaturePage], strings.TrimSuffix(path.Base(se.Page), ".md"))
		}
		sort.SliceStable(se.Scenarios, func(i, j int) bool { return own(se.Scenarios[i]) && !own(se.Scenarios[j]) })
		se.Badge = se.Scenarios
		if len(se.Badge) > BadgeScenarios {
			se.Badge, se.More = se.Badge[:BadgeScenarios], len(se.Badge)-BadgeScenarios
		}
		data.Examples[id] = se
		if ex.Status == results.Passed && len(se.Scenarios) > 0 {
			sum.Verified++
		}
	}
	// An example that no scenario of the results ran: say why, and what
	// gives the site what it lacks.
	var filteredOut []string
	for _, id := range in.Docs.IDs() {
		if len(data.Examples[id].Scenarios) > 0 {
			continue
		}
		doc, _ := in.Docs.Get(id)
		page, err := filepath.Rel(in.DocsDir, doc.File)
		if err != nil {
			return nil, sum, err
		}
		se, filtered, err := missingExample(id, doc.File, m, in.Features)
		if filtered {
			filteredOut = append(filteredOut, id)
			continue
		}
		if err != nil {
			report(err)
			continue
		}
		se.Page = filepath.ToSlash(page)
		data.Examples[id] = se
		sum.LeftOut = append(sum.LeftOut, fmt.Sprintf("%s (%s): %s; %s runs it", id, doc.File, se.Why, se.Command))
	}
	if len(filteredOut) > 0 {
		report(fmt.Errorf("%d documented examples were run by no scenario because the tag filter of the results' run (%s) left their scenarios out: %s; run %s (every scenario), then make site",
			len(filteredOut), describeRuns(m.Provenance.Runs), strings.Join(filteredOut, ", "), withoutTagFilter(rerun(m))))
	}
	return data, sum, errors.Join(errs...)
}

// tagsVarRE is a TAGS=... setting of a recorded command line.
var tagsVarRE = regexp.MustCompile(`\s*\bTAGS=('[^']*'|"[^"]*"|\S+)`)

// withoutTagFilter is a recorded command without its TAGS setting.
func withoutTagFilter(command string) string {
	return strings.TrimSpace(tagsVarRE.ReplaceAllString(command, ""))
}

// stackTags are the tags of scenarios that only one stack runs, and the
// command that runs them.
var stackTags = map[string]struct{ stack, command string }{
	"@containers": {"the container stack (a Docker engine)", "make conformance STACK=containers"},
	"@local":      {"the in-process stack", "make conformance STACK=local"},
}

// prerequisiteTags are the tags of scenarios that make conformance leaves
// out on purpose when the machine lacks what they need: it adds ~TAG to
// the run's tag filter, which the manifest records. Such a scenario's
// examples are published unverified, with the command that runs them.
var prerequisiteTags = map[string]struct{ needs, command string }{
	"@real-servers": {"Dex and Ory Hydra, which the run that made these results had not built", "make real-servers"},
	"@mcp-remote":   {"mcp-remote (npm), which the run that made these results could not install", "make mcp-remote-install && make conformance"},
	"@acme":         {"Pebble, Let's Encrypt's test ACME server, which the run that made these results had not built", "make real-servers-build && make conformance"},
	"@jaeger":       {"Jaeger, which the run that made these results had not built", "make real-servers-build && make conformance"},
}

// leftOutFor says why the run r did not select a scenario tagged tags when
// that was on purpose: its stack cannot run it (r.LeftOutTag), or the
// filter's ~TAG for a prerequisite the machine lacked, without which the
// run would have selected it. It returns "" for a scenario the run's own
// tag filter did not ask for.
func leftOutFor(r results.Run, tags []string) (why, command string) {
	if t, ok := stackTags[r.LeftOutTag]; ok && slices.Contains(tags, r.LeftOutTag) && results.MatchTags(r.Filter, tags) {
		return "its scenario needs " + t.stack + ", which the run that made these results did not have", t.command
	}
	for _, tag := range slices.Sorted(maps.Keys(prerequisiteTags)) {
		if slices.Contains(tags, tag) && results.MatchTags(withoutNegated(r.Tags, tag), tags) {
			p := prerequisiteTags[tag]
			return "its scenario needs " + p.needs, p.command
		}
	}
	return "", ""
}

// withoutNegated is the godog tag expression expr (comma-separated
// alternatives of &&-joined tags) without its ~tag terms; an alternative
// left empty selects every scenario, and so does the expression.
func withoutNegated(expr, tag string) string {
	var alts []string
	for _, alt := range strings.Split(expr, ",") {
		var terms []string
		for _, term := range strings.Split(alt, "&&") {
			term = strings.TrimSpace(term)
			if n, ok := strings.CutPrefix(term, "~"); ok && "@"+strings.TrimPrefix(n, "@") == tag {
				continue
			}
			if term != "" {
				terms = append(terms, term)
			}
		}
		if len(terms) == 0 {
			return ""
		}
		alts = append(alts, strings.Join(terms, " && "))
	}
	return strings.Join(alts, ",")
}

// missingExample explains an example that the manifest m has no scenario
// for. When every scenario that names it was left out on purpose, because
// it needs a stack the run did not have or a prerequisite the machine
// lacked (see leftOutFor), the example is published as LeftOut, with the
// command that runs it; otherwise the site cannot be built, and the error
// names the command that gives it what it lacks.
func missingExample(id, file string, m *results.Manifest, feats []*Feature) (ex SiteExample, filtered bool, err error) {
	type named struct {
		name, feature string
		tags          []string
	}
	var naming []named
	for _, f := range feats {
		for _, sc := range f.Scenarios {
			if scenarioNames(sc, f.Background, id) {
				naming = append(naming, named{sc.Name, f.File, append(append([]string{}, f.Tags...), sc.Tags...)})
			}
		}
	}
	if len(naming) == 0 {
		return SiteExample{}, false, fmt.Errorf("%s: example %q is run by no scenario: write a scenario that uses it; the site publishes verified examples only", file, id)
	}
	runs := m.Provenance.Runs
	var why, command string
	for _, n := range naming {
		selected, leftOut := false, false
		for _, r := range runs {
			if results.MatchTags(r.Tags, n.tags) {
				selected = true
			} else if w, c := leftOutFor(r, n.tags); w != "" {
				leftOut, why, command = true, w, c
			}
		}
		switch {
		case selected:
			return SiteExample{}, false, fmt.Errorf("%s: example %q: the scenario %q of %s runs it, but the results (%s) do not have it: they are older than the feature files; run %s, then make site",
				file, id, n.name, n.feature, m.Provenance.Command, rerun(m))
		case !leftOut:
			return SiteExample{}, true, nil // the tag filter asked for other scenarios
		}
	}
	return SiteExample{Status: LeftOut, Scenarios: []SiteScenario{}, Badge: []SiteScenario{}, Why: why, Command: command}, false, nil
}

// scenarioNames says whether a scenario (with its feature's background)
// loads the example id: a step, or a row of its outline, quotes it.
func scenarioNames(sc Scenario, background []Step, id string) bool {
	for _, st := range append(append([]Step{}, background...), sc.Steps...) {
		if strings.Contains(st.Text, `"`+id+`"`) {
			return true
		}
	}
	for _, table := range sc.Examples {
		for _, row := range table {
			if slices.Contains(row, id) {
				return true
			}
		}
	}
	return false
}

func rerun(m *results.Manifest) string {
	if m.Provenance.Command != "" {
		return m.Provenance.Command
	}
	return "make conformance"
}

func describeRuns(runs []results.Run) string {
	var out []string
	for _, r := range runs {
		tags := "tag filter " + r.Filter
		if r.Filter == "" {
			tags = "every scenario"
		}
		out = append(out, fmt.Sprintf("%s on the %s stack, %s", r.Command, r.Stack, tags))
	}
	return strings.Join(out, "; ")
}

// WriteSite writes the site's generated inputs under out:
//
//	out/data/results.json             the badges' data (hugo.Data.results)
//	out/content/features/_index.md    the feature files' section
//	out/content/features/<name>.md    one page per feature file
//
// out is emptied first: everything in it is generated.
func WriteSite(out string, in SiteInput) (Summary, error) {
	data, sum, err := BuildSiteData(in)
	if err != nil {
		return sum, err
	}
	if err := os.RemoveAll(out); err != nil {
		return sum, err
	}
	if err := writeJSON(filepath.Join(out, "data", "results.json"), data, ""); err != nil {
		return sum, err
	}
	if err := writeJSON(filepath.Join(out, "content", strings.TrimPrefix(ExamplesPage, "/")+".md"), examplesFrontMatter, examplesBody(data)); err != nil {
		return sum, err
	}
	dir := filepath.Join(out, "content", "features")
	byScenario := make(map[[2]string][]results.Scenario)
	for _, s := range in.Manifest.Scenarios {
		k := [2]string{s.Feature, s.Name}
		byScenario[k] = append(byScenario[k], s)
	}
	index := map[string]any{
		"title":       "Feature files",
		"linkTitle":   "Feature files",
		"description": "The conformance scenarios, written from these docs, with the status of each in the latest run.",
		"weight":      1000,
		"params":      map[string]any{"provenance": data.Provenance},
	}
	if err := writeJSON(filepath.Join(dir, "_index.md"), index, indexBody); err != nil {
		return sum, err
	}
	for i, f := range in.Features {
		page := featurePage(f, byScenario, in)
		fm := map[string]any{
			"title":       f.Name,
			"description": "Feature file " + f.File + ": " + firstSentence(f.Description),
			"weight":      i + 1,
			"params":      map[string]any{"feature": page, "provenance": data.Provenance},
		}
		if err := writeJSON(filepath.Join(dir, f.Slug+".md"), fm, f.Description+"\n"); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// examplesFrontMatter keeps the verified examples page out of the
// navigation: badges link to it.
var examplesFrontMatter = map[string]any{
	"title":       "Verified examples",
	"description": "Every documented example with every scenario that ran it in the latest conformance results.",
	"build":       map[string]any{"list": "never"},
}

// examplesBody lists every example with all the scenarios that ran it
// (a badge names only the first few).
func examplesBody(data *SiteData) string {
	ids := make([]string, 0, len(data.Examples))
	for id := range data.Examples {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString("Each documented example, with every scenario that ran it in the results this site was built from.\n")
	for _, id := range ids {
		e := data.Examples[id]
		fmt.Fprintf(&b, "\n## %s\n\nOn [%s](%s#example-%s): ", id, e.Page, e.Page, id)
		if e.Status == LeftOut {
			fmt.Fprintf(&b, "not verified by these results: %s; `%s` runs it.\n", e.Why, e.Command)
			continue
		}
		fmt.Fprintf(&b, "%d scenarios.\n\n", len(e.Scenarios))
		for _, sc := range e.Scenarios {
			fmt.Fprintf(&b, "- [%s](../features/%s.feature#%s) (%s)\n", sc.Name, path.Base(sc.FeaturePage), sc.Anchor, sc.Status)
		}
	}
	return b.String()
}

const indexBody = `Each page shows one feature file of the conformance harness as living documentation: its
scenarios, the steps they take, the documented examples they run, and what the latest run of
` + "`make conformance`" + ` said about each.
`

// featureView is what a feature page's layout reads.
type featureView struct {
	*Feature
	Status    string         `json:"status"`
	Passed    int            `json:"passed"`
	Failed    int            `json:"failed"`
	NotRun    int            `json:"not_run"`
	Scenarios []scenarioView `json:"scenarios"`
	DocPages  []string       `json:"doc_pages"`
}

type scenarioView struct {
	Scenario
	Status       string        `json:"status"`
	Steps        []stepView    `json:"steps"`
	Runs         []runView     `json:"runs"`
	ExampleLinks []exampleLink `json:"example_links"`
}

type stepView struct {
	Step
	Background bool   `json:"background,omitempty"`
	Status     string `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
}

type runView struct {
	Status  string  `json:"status"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

type exampleLink struct {
	ID string `json:"id"`
	// Page is relative to the docs directory; "" when the docs no longer
	// have the example.
	Page string `json:"page"`
}

func featurePage(f *Feature, byScenario map[[2]string][]results.Scenario, in SiteInput) featureView {
	v := featureView{Feature: f, Scenarios: []scenarioView{}, DocPages: []string{}}
	for _, t := range f.Tags {
		if p, ok := strings.CutPrefix(t, "@doc:"); ok {
			v.DocPages = append(v.DocPages, p)
		}
	}
	for _, s := range f.Scenarios {
		runs := byScenario[[2]string{f.File, s.Name}]
		sv := scenarioView{Scenario: s, Status: NotRun, Runs: []runView{}, ExampleLinks: []exampleLink{}}
		seen := make(map[string]bool)
		for _, r := range runs {
			sv.Runs = append(sv.Runs, runView{Status: r.Status, Error: r.Error, Seconds: r.Seconds})
			if sv.Status == NotRun || r.Status != results.Passed {
				sv.Status = r.Status
			}
			for _, id := range r.Examples {
				if seen[id] {
					continue
				}
				seen[id] = true
				l := exampleLink{ID: id}
				if e, err := in.Docs.Get(id); err == nil {
					if p, err := filepath.Rel(in.DocsDir, e.File); err == nil {
						l.Page = filepath.ToSlash(p)
					}
				}
				sv.ExampleLinks = append(sv.ExampleLinks, l)
			}
		}
		var all []stepView
		for _, st := range f.Background {
			all = append(all, stepView{Step: st, Background: true})
		}
		for _, st := range s.Steps {
			all = append(all, stepView{Step: st})
		}
		// One run of a plain scenario: its step results line up with the
		// background and scenario steps.
		if len(runs) == 1 && len(s.Examples) == 0 {
			rs := runs[0].Steps
			for i := range all {
				if i < len(rs) && rs[i].Text == all[i].Text {
					all[i].Status, all[i].Error = rs[i].Status, rs[i].Error
				} else if i >= len(rs) {
					all[i].Status = results.Skipped
				}
			}
		}
		sv.Steps = all
		switch sv.Status {
		case results.Passed:
			v.Passed++
		case NotRun:
			v.NotRun++
		default:
			v.Failed++
		}
		v.Scenarios = append(v.Scenarios, sv)
	}
	switch {
	case v.Failed > 0:
		v.Status = results.Failed
	case v.NotRun > 0:
		v.Status = NotRun
	default:
		v.Status = results.Passed
	}
	return v
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if ss := sentences(s); len(ss) > 0 {
		return ss[0]
	}
	return s
}

// writeJSON writes v as JSON; with a body it writes a content page whose
// front matter is the JSON object.
func writeJSON(path string, v any, body string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if body != "" {
		b = append(append(b, '\n'), body...)
	}
	return os.WriteFile(path, b, 0o644)
}

// RenderDiagrams renders every *.d2 file of srcDir to an SVG of the same
// name in outDir with render, and returns the names of the SVGs.
func RenderDiagrams(srcDir, outDir string, render func(src, dst string) error) ([]string, error) {
	srcs, err := filepath.Glob(filepath.Join(srcDir, "*.d2"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".d2") + ".svg"
		if err := render(src, filepath.Join(outDir, name)); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", src, err)
		}
		out = append(out, name)
	}
	return out, nil
}
