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
