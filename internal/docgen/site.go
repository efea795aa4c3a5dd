package docgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// SiteData is the data file the site's templates read as hugo.Data.results.
type SiteData struct {
	Provenance SiteProvenance         `json:"provenance"`
	Examples   map[string]SiteExample `json:"examples"`
}

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
	Examples  int // identified examples in the docs
	Verified  int // of those, verified by passing scenarios only
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
	data := &SiteData{Provenance: prov, Examples: make(map[string]SiteExample)}
	anchors := make(map[[2]string]string) // (feature file, scenario name) → anchor
	for _, f := range in.Features {
		for _, s := range f.Scenarios {
			anchors[[2]string{f.File, s.Name}] = s.Anchor
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
		data.Examples[id] = se
		if ex.Status == results.Passed && len(se.Scenarios) > 0 {
			sum.Verified++
		}
	}
	return data, sum, errors.Join(errs...)
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
