package mcpconformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJudge(t *testing.T) {
	ok := Check{ID: "a", Status: statusSuccess}
	info := Check{ID: "i", Status: "INFO"}
	for _, tc := range []struct {
		name       string
		checks     []Check
		exit       int
		stderr     string
		timedOut   bool
		verdict    string
		passed     int
		failed     int
		reasonPart string
	}{
		{name: "all checks pass", checks: []Check{ok, info, ok}, verdict: Passed, passed: 2},
		{name: "a failure fails", checks: []Check{ok, {ID: "b", Status: statusFailure, ErrorMessage: "no resource"}}, exit: 1,
			verdict: Failed, passed: 1, failed: 1, reasonPart: "b failure: no resource"},
		{name: "a warning fails, as the suite counts", checks: []Check{ok, {ID: "w", Status: statusWarning, Description: "SHOULD use scope"}}, exit: 1,
			verdict: Failed, passed: 1, failed: 1, reasonPart: "w warning: SHOULD use scope"},
		{name: "the suite's exit fails with no failing check", checks: []Check{ok}, exit: 1,
			stderr:  "--- mcp-proxy log ---\n{\"msg\":\"x\"}\n--- end of mcp-proxy log ---\nauth/x (proxy): could not connect\n",
			verdict: Failed, passed: 1, reasonPart: "the client said: auth/x (proxy): could not connect"},
		{name: "a timeout says so", checks: []Check{ok}, exit: 1, timedOut: true, verdict: Failed, passed: 1, reasonPart: "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Judge(tc.checks, tc.exit, tc.stderr, tc.timedOut)
			if got.Verdict != tc.verdict || got.ChecksPassed != tc.passed || got.ChecksFailed != tc.failed {
				t.Errorf("Judge = %s, %d passed, %d failed; want %s, %d, %d", got.Verdict, got.ChecksPassed, got.ChecksFailed, tc.verdict, tc.passed, tc.failed)
			}
			if !strings.Contains(got.Reason, tc.reasonPart) {
				t.Errorf("reason %q does not contain %q", got.Reason, tc.reasonPart)
			}
		})
	}
}

func TestGrade(t *testing.T) {
	scenarios := []string{"auth/a", "auth/b", "auth/c"}
	outcome := map[string]string{"auth/a": Passed, "auth/b": Failed, "auth/c": Failed}
	run := func(sc string) ScenarioResult {
		return ScenarioResult{Scenario: sc, Verdict: outcome[sc], Reason: "checks failed"}
	}
	for _, tc := range []struct {
		name          string
		excuses       map[string]string
		passed, na    int
		failed        int
		problemsWant  []string
		verdictOfC    string
		reasonOfCWant string
	}{
		{name: "nothing excused: every failure is a problem", passed: 1, failed: 2,
			problemsWant: []string{"x: auth/b failed: checks failed", "x: auth/c failed: checks failed"}, verdictOfC: Failed, reasonOfCWant: "checks failed"},
		{name: "an excused failure is not applicable", excuses: map[string]string{"auth/c": "an intermediary cannot"}, passed: 1, failed: 1, na: 1,
			problemsWant: []string{"x: auth/b failed: checks failed"}, verdictOfC: NotApplicable, reasonOfCWant: "an intermediary cannot"},
		{name: "an excuse that passes fails the run", excuses: map[string]string{"auth/a": "stale"}, passed: 1, failed: 2,
			problemsWant: []string{"x: auth/a passes now: remove it from na.yaml", "x: auth/b failed: checks failed", "x: auth/c failed: checks failed"},
			verdictOfC:   Failed, reasonOfCWant: "checks failed"},
		{name: "an excuse for no scored scenario fails the run", excuses: map[string]string{"auth/gone": "old"}, passed: 1, failed: 2,
			problemsWant: []string{"x: na.yaml names auth/gone, which req.yaml does not score: remove it", "x: auth/b failed: checks failed", "x: auth/c failed: checks failed"},
			verdictOfC:   Failed, reasonOfCWant: "checks failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr, failures, stale := Grade(Client{Name: "x", Excuses: tc.excuses}, scenarios, run, "na.yaml", "req.yaml")
			problems := append(stale, failures...)
			if cr.Passed != tc.passed || cr.Failed != tc.failed || cr.NotApplicable != tc.na || cr.Total != 3 {
				t.Errorf("Grade = %d passed, %d failed, %d n/a of %d; want %d, %d, %d of 3", cr.Passed, cr.Failed, cr.NotApplicable, cr.Total, tc.passed, tc.failed, tc.na)
			}
			if diff := cmp.Diff(tc.problemsWant, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if c := cr.Scenarios[2]; c.Verdict != tc.verdictOfC || c.Reason != tc.reasonOfCWant {
				t.Errorf("auth/c = %s (%q); want %s (%q)", c.Verdict, c.Reason, tc.verdictOfC, tc.reasonOfCWant)
			}
		})
	}
}

func TestReadExcuses(t *testing.T) {
	got, err := ReadExcuses("not-applicable.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got["auth/basic-cimd"], "conformance-test.local") {
		t.Errorf("the checked-in file's auth/basic-cimd reason is %q", got["auth/basic-cimd"])
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no reason": "- scenario: auth/a\n",
		"twice":     "- scenario: auth/a\n  reason: x\n- scenario: auth/a\n  reason: y\n",
		"typo":      "- scenario: auth/a\n  reasn: x\n",
	} {
		p := filepath.Join(dir, "na.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadExcuses(p); err == nil {
			t.Errorf("%s: ReadExcuses accepted %q", name, body)
		}
	}
}

func TestClosingLineAndTable(t *testing.T) {
	r := &Report{Clients: []ClientResult{
		{Client: "mcp-proxy", Description: "through mcp-proxy", Passed: 1, NotApplicable: 1, Failed: 1, Total: 3, Scenarios: []ScenarioResult{
			{Scenario: "auth/a", Verdict: Passed, ChecksPassed: 5},
			{Scenario: "auth/b", Verdict: Failed, ChecksPassed: 1, ChecksFailed: 2, Reason: "x failure: y"},
			{Scenario: "auth/c", Verdict: NotApplicable, ChecksPassed: 3, ChecksFailed: 1, Reason: "fixed client id"},
		}},
		{Client: "baseline", Description: "baseline", Passed: 3, Total: 3, Scenarios: []ScenarioResult{
			{Scenario: "auth/a", Verdict: Passed}, {Scenario: "auth/b", Verdict: Passed}, {Scenario: "auth/c", Verdict: Passed},
		}},
	}}
	if got, want := r.Clients[0].ClosingLine(), "mcp-conformance: 1 of 3 scenarios passed, 1 not applicable (through mcp-proxy)"; got != want {
		t.Errorf("closing line %q, want %q", got, want)
	}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"auth/b", "1 passed, 2 failed", "mcp-proxy: x failure: y", "mcp-proxy: fixed client id"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
