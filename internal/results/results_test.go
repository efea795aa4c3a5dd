package results

import "testing"

func TestMerge(t *testing.T) {
	a := &Manifest{Provenance: Provenance{Stack: "containers"}, Scenarios: []Scenario{
		{Name: "s1", Feature: "f", Status: Passed, Examples: []string{"e1"}},
		{Name: "s2", Feature: "f", Status: Failed, Examples: []string{"e2"}},
		{Name: "outline", Feature: "f", Status: Passed, Examples: []string{"row1"}},
		{Name: "outline", Feature: "f", Status: Passed, Examples: []string{"row2"}},
	}, Examples: map[string]ExampleResult{"e1": {Page: "p"}, "e2": {Page: "p"}, "row1": {Page: "p"}, "row2": {Page: "p"}}}
	b := &Manifest{Provenance: Provenance{Stack: "local"}, Scenarios: []Scenario{
		{Name: "s1", Feature: "f", Status: Passed, Examples: []string{"e1"}},
		{Name: "s2", Feature: "f", Status: Passed, Examples: []string{"e2"}},
		{Name: "only-local", Feature: "g", Status: Passed, Examples: []string{"e3"}},
	}, Examples: map[string]ExampleResult{"e3": {Page: "q"}}}
	m := Merge(a, b)
	if m.Examples["row1"].Status != Passed || m.Examples["row2"].Status != Passed {
		t.Errorf("the rows of an outline were not both kept: %+v", m.Examples)
	}
	if m.Provenance.Stack != "containers+local" || m.Provenance.Passed != 4 || m.Provenance.Failed != 1 {
		t.Errorf("provenance %+v", m.Provenance)
	}
	if m.Examples["e1"].Status != Passed || m.Examples["e2"].Status != Failed || m.Examples["e3"].Status != Passed {
		t.Errorf("examples %+v", m.Examples)
	}
	if m.Examples["e3"].Page != "q" || len(m.Examples["e1"].Scenarios) != 1 {
		t.Errorf("examples %+v", m.Examples)
	}
}

// A manifest records each run's command, stack and tag filter; merging
// keeps them all, so the site can say exactly what its results are.
func TestRunsAreRecordedAndKeptByMerge(t *testing.T) {
	rec := &Recorder{}
	rec.StartRun("make conformance", "containers", "", "~@local")
	rec.LeaveOut(1, "@local")
	rec.Add(Scenario{Name: "a", Feature: "f", Status: Passed})
	rec.Add(Scenario{Name: "b", Feature: "f", Status: Failed})
	rec.StartRun("make conformance", "local", "", "@local")
	rec.Add(Scenario{Name: "c", Feature: "f", Status: Passed})
	m := rec.Manifest([]Part{{Name: "redis-server", Kind: "embedded", Detail: "x"}}, func(string) string { return "" }, ".")
	p := m.Provenance
	if p.Stack != "containers+local" || p.Command != "make conformance" || len(p.Runs) != 2 {
		t.Fatalf("provenance %+v", p)
	}
	if r := p.Runs[0]; r.Tags != "~@local" || r.Passed != 1 || r.Failed != 1 || r.LeftOut != 1 || r.LeftOutTag != "@local" {
		t.Errorf("first run %+v", r)
	}
	if r := p.Runs[1]; r.Stack != "local" || r.Passed != 1 || r.Failed != 0 || r.Commit != p.Commit {
		t.Errorf("second run %+v", r)
	}
	if m.Scenarios[2].Stack != "local" || m.Scenarios[0].Stack != "containers" {
		t.Errorf("scenario stacks %q %q", m.Scenarios[0].Stack, m.Scenarios[2].Stack)
	}
	if got := m.PartsLine(); got != "parts: real: none; embedded: redis-server (x)" {
		t.Errorf("parts line %q", got)
	}

	other := &Recorder{}
	other.StartRun("make conformance STACK=local TAGS=@doc:quickstart", "local", "@doc:quickstart", "@doc:quickstart && ~@containers")
	other.Add(Scenario{Name: "a", Feature: "f", Status: Passed})
	merged := Merge(m, other.Manifest(nil, func(string) string { return "" }, "."))
	mp := merged.Provenance
	if len(mp.Runs) != 3 || mp.Runs[2].Tags != "@doc:quickstart && ~@containers" {
		t.Errorf("merged runs %+v", mp.Runs)
	}
	if mp.Command != "make conformance && make conformance STACK=local TAGS=@doc:quickstart" {
		t.Errorf("merged command %q", mp.Command)
	}
	if len(mp.Parts) != 1 {
		t.Errorf("merged parts %+v", mp.Parts)
	}
}
