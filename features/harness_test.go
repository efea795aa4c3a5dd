package features

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/results"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// TestHarnessFailsOnAnUnknownExample proves the harness's half of the
// drift check: a scenario that names an example the docs do not have fails,
// naming the id, before any stack starts. (The site build is the other
// half: it fails on an example that no passing scenario ran.)
func TestHarnessFailsOnAnUnknownExample(t *testing.T) {
	docs, err := docexamples.Load(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	started := false
	newStack := func() (stack.Stack, error) {
		started = true
		return nil, errors.New("no stack in this test")
	}
	rec := &results.Recorder{}
	suite := godog.TestSuite{
		Name: "unknown-example",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			initScenario(sc, docs, newStack, rec)
		},
		Options: &godog.Options{
			Format: "progress",
			Output: io.Discard,
			FeatureContents: []godog.Feature{{Name: "drift.feature", Contents: []byte(`Feature: drift
  Scenario: A scenario naming an example that the docs do not have
    Given the operator configuration "no-such-example-in-the-docs"
`)}},
			Strict:      true,
			Concurrency: 1,
		},
	}
	if status := suite.Run(); status == 0 {
		t.Fatal("the suite passed although its scenario names an example that does not exist")
	}
	m := rec.Manifest(nil, func(string) string { return "" }, ".")
	if len(m.Scenarios) != 1 {
		t.Fatalf("recorded %d scenarios, want 1", len(m.Scenarios))
	}
	s := m.Scenarios[0]
	if s.Status != results.Failed || !strings.Contains(s.Error+stepErrors(s), `no example with id "no-such-example-in-the-docs"`) {
		t.Errorf("scenario = %s, error %q %q; want failed naming the unknown id", s.Status, s.Error, stepErrors(s))
	}
	if started {
		t.Error("a stack started for a scenario whose example does not exist")
	}
	if m.Provenance.Failed != 1 {
		t.Errorf("manifest counts %d failed, want 1", m.Provenance.Failed)
	}
}

func stepErrors(s results.Scenario) string {
	var b strings.Builder
	for _, st := range s.Steps {
		b.WriteString(st.Error)
	}
	return b.String()
}

// The container stack's run and the in-process run of what it leaves out
// must together select exactly the scenarios the user's filter selects.
func TestHarnessLocalFollowUpCoversWhatTheContainerRunLeavesOut(t *testing.T) {
	all := scenarioTags(".")
	if len(all) == 0 {
		t.Fatal("no scenarios found in the feature files")
	}
	local := 0
	for _, expr := range []string{"", "@doc:advanced", "@doc:advanced,@doc:quickstart", "~@doc:advanced"} {
		without, _ := withoutTag(expr, localOnlyTag)
		only := onlyTag(expr, localOnlyTag)
		for _, tags := range all {
			want := results.MatchTags(expr, tags)
			inContainers, inLocal := results.MatchTags(without, tags), results.MatchTags(only, tags)
			if inContainers && inLocal {
				t.Errorf("filter %q: a scenario tagged %v runs on both stacks", expr, tags)
			}
			if (inContainers || inLocal) != want {
				t.Errorf("filter %q: a scenario tagged %v is selected %v, want %v", expr, tags, inContainers || inLocal, want)
			}
			if expr == "" && inLocal {
				local++
			}
		}
	}
	if local == 0 {
		t.Errorf("no scenario is tagged %s: the check above proved nothing", localOnlyTag)
	}
}
