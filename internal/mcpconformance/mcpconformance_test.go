package mcpconformance

import (
	"os"
	"path/filepath"
	"slices"
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
			problemsWant: []string{"x: na.yaml names auth/gone, which req.yaml does not run: remove it", "x: auth/b failed: checks failed", "x: auth/c failed: checks failed"},
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
	if !strings.Contains(got[LegClient]["auth/basic-cimd"], "conformance-test.local") {
		t.Errorf("the checked-in file's auth/basic-cimd reason is %q", got[LegClient]["auth/basic-cimd"])
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no reason": "- leg: client\n  scenario: auth/a\n",
		"twice":     "- leg: client\n  scenario: auth/a\n  reason: x\n- leg: client\n  scenario: auth/a\n  reason: y\n",
		"typo":      "- leg: client\n  scenario: auth/a\n  reasn: x\n",
		"no leg":    "- scenario: auth/a\n  reason: x\n",
		"bad leg":   "- leg: proxy\n  scenario: auth/a\n  reason: x\n",
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
	r := &Leg{Name: LegClient, Clients: []ClientResult{
		{Client: "mcp-proxy", Description: "through mcp-proxy", Passed: 1, NotApplicable: 1, Failed: 1, Total: 3, Scenarios: []ScenarioResult{
			{Scenario: "auth/a", Verdict: Passed, ChecksPassed: 5},
			{Scenario: "auth/b", Verdict: Failed, ChecksPassed: 1, ChecksFailed: 2, Reason: "x failure: y"},
			{Scenario: "auth/c", Verdict: NotApplicable, ChecksPassed: 3, ChecksFailed: 1, Reason: "fixed client id"},
		}},
		{Client: "baseline", Description: "baseline", Passed: 3, Total: 3, Scenarios: []ScenarioResult{
			{Scenario: "auth/a", Verdict: Passed}, {Scenario: "auth/b", Verdict: Passed}, {Scenario: "auth/c", Verdict: Passed},
		}},
	}}
	if got, want := r.Clients[0].ClosingLine(LegClient), "mcp-conformance client: 1 of 3 scenarios passed, 1 not applicable, 1 failed (through mcp-proxy)"; got != want {
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

// TestJudgeServer: through the proxy a server scenario passes, fails as
// direct (the same FAILURE checks), or fails (any difference, either way,
// or no result); a WARNING is not a failure; an excuse turns a failure
// into not applicable.
func TestJudgeServer(t *testing.T) {
	fail := func(ids ...string) ScenarioResult {
		r := ScenarioResult{Dir: "d", Verdict: Passed}
		for _, id := range ids {
			r.FailedChecks = append(r.FailedChecks, Check{ID: id, Status: statusFailure, ErrorMessage: id + " went wrong"})
		}
		return r
	}
	warn := ScenarioResult{Dir: "d", FailedChecks: []Check{{ID: "slow", Status: statusWarning}}}
	missing := ScenarioResult{Verdict: Failed, Reason: "the suite wrote no checks.json for it"}
	for _, tc := range []struct {
		name           string
		direct, proxy  ScenarioResult
		excuse         string
		want, wantDir  string
		reasonContains string
	}{
		{"both pass", fail(), fail(), "", Passed, Passed, ""},
		{"a warning only through the proxy", fail(), warn, "", Passed, Passed, ""},
		{"the same failures", fail("a", "b"), fail("b", "a"), "", AsDirect, Failed, "the same failing checks as direct: a, b"},
		{"a failure through the proxy only", fail("a"), fail("a", "b"), "", Failed, Failed, "fails through the proxy only: b (b went wrong)"},
		{"a failure direct only", fail("a"), fail(), "", Failed, Failed, "fails direct only: a"},
		{"no result through the proxy", fail(), missing, "", Failed, Passed, "no result through the proxy"},
		{"excused", fail(), fail("b"), "an intermediary cannot", NotApplicable, Passed, "an intermediary cannot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, p := tc.direct, tc.proxy
			judgeServer(&d, &p)
			if tc.excuse != "" {
				if problem := applyExcuse(&p, tc.excuse, "mcp-proxy", "na.yaml"); problem != "" {
					t.Errorf("applyExcuse: %s", problem)
				}
			}
			if p.Verdict != tc.want || d.Verdict != tc.wantDir {
				t.Errorf("verdicts: proxy %s, direct %s; want %s, %s (reason %q)", p.Verdict, d.Verdict, tc.want, tc.wantDir, p.Reason)
			}
			if !strings.Contains(p.Reason, tc.reasonContains) {
				t.Errorf("reason %q lacks %q", p.Reason, tc.reasonContains)
			}
		})
	}
}

// TestReadResultDirs: the suite's result directories are read by the
// scenario their name carries, and one without checks.json reads as
// missing.
func TestReadResultDirs(t *testing.T) {
	out := t.TempDir()
	write := func(dir, body string) {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if err := os.WriteFile(filepath.Join(out, dir, "checks.json"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("server-tools-list-2026-12-07T06-48-04-349Z", `[{"id":"a","status":"SUCCESS"},{"id":"b","status":"FAILURE"},{"id":"c","status":"WARNING"}]`)
	write("server-input-required-result-basic-sampling-2026-12-07T06-48-04-462Z", `[{"id":"a","status":"SKIPPED","errorMessage":"not exercised"}]`)
	write("server-caching-2026-12-07T06-48-04-349Z", "")
	write("authorization-server-x-2026-12-07T06-48-04-349Z", `[]`)
	got, err := readResultDirs(out, "server")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("read %d scenarios, want 2: %v", len(got), got)
	}
	tl := got["tools-list"]
	if tl.ChecksPassed != 1 || tl.ChecksFailed != 2 || tl.Warnings != 1 || !slices.Equal(tl.failures(), []string{"b"}) {
		t.Errorf("tools-list: %+v", tl)
	}
	if s := got["input-required-result-basic-sampling"]; len(s.Skipped) != 1 || !strings.Contains(s.Skipped[0], "not exercised") {
		t.Errorf("skipped checks: %+v", s)
	}
}

// TestRequirements reads a requirement set: its scored scenarios, and the
// extension scenarios the harness runs by name, which it must list.
func TestRequirements(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "requirements"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "server: [tools-list]\nclient: [tools_call, auth/a]\nnot_scored:\n  - {scenario: auth/cc, leg: client, reason: extension}\n  - {scenario: tasks, leg: server, reason: extension}\n"
	if err := os.WriteFile(filepath.Join(dir, "requirements", "2026-07-28.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	req, err := Suite{Package: dir}.Requirements("2026-07-28")
	if err != nil {
		t.Fatal(err)
	}
	if !req.Scored(LegClient, "auth/a") || req.Scored(LegClient, "auth/cc") || !req.Scored(LegServer, "tools-list") || req.Scored(LegServer, "tasks") {
		t.Errorf("Scored is wrong for %+v", req)
	}
	if _, err := req.Extension(LegClient, "auth/cc"); err != nil {
		t.Error(err)
	}
	if _, err := req.Extension(LegClient, "auth/gone"); err == nil {
		t.Error("an extension scenario the set does not list was accepted")
	}
	if _, err := req.Extension(LegClient, "tasks"); err == nil {
		t.Error("a server extension was accepted as a client one")
	}
}

// TestGradeNotRun: a scenario a client does not run counts as not run,
// with its reason, and is neither a pass nor a failure.
func TestGradeNotRun(t *testing.T) {
	ran := 0
	cr, failures, problems := Grade(Client{Name: "baseline", NotRun: map[string]string{"auth/cc": "no grant"}}, []string{"auth/a", "auth/cc"},
		func(sc string) ScenarioResult { ran++; return ScenarioResult{Scenario: sc, Verdict: Passed} }, "na.yaml", "req.yaml")
	if ran != 1 || cr.Passed != 1 || cr.NotRun != 1 || len(failures) != 0 || len(problems) != 0 {
		t.Errorf("ran %d; %+v; failures %v; problems %v", ran, cr, failures, problems)
	}
	if s := cr.Scenarios[1]; s.Verdict != NotRun || s.Reason != "no grant" {
		t.Errorf("auth/cc: %+v", s)
	}
	if got, want := cr.ClosingLine(LegClient), "mcp-conformance client: 1 of 2 scenarios passed, 0 not applicable, 1 not run ()"; got != want {
		t.Errorf("closing line %q, want %q", got, want)
	}
}

// TestSummaryLine is the one line make test quotes.
func TestSummaryLine(t *testing.T) {
	r := &Report{Legs: []Leg{
		{Name: LegClient, Clients: []ClientResult{{Passed: 33, NotApplicable: 1, Total: 34}}},
		{Name: LegAuthorization, Clients: []ClientResult{{Passed: 8, Total: 8}}},
		{Name: LegServer, Clients: []ClientResult{{Passed: 74, AsDirect: 9, Total: 83}}},
	}}
	if got, want := r.SummaryLine(), "mcp-conformance: client 33 of 34 passed, authorization 8 of 8 passed, server 83 of 83 as direct, 1 not applicable (through mcp-proxy)"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestApplyExcuse: an excuse turns a failure into not applicable, and an
// excused scenario that passes, or scores as direct in the server leg, is
// a problem until the entry is removed.
func TestApplyExcuse(t *testing.T) {
	for _, tc := range []struct {
		verdict, want, problem string
	}{
		{Failed, NotApplicable, ""},
		{Passed, Passed, "mcp-proxy: s passes now: remove it from na.yaml"},
		{AsDirect, AsDirect, "mcp-proxy: s scores as direct now: remove it from na.yaml"},
	} {
		res := ScenarioResult{Scenario: "s", Verdict: tc.verdict, Reason: "checks failed"}
		p := applyExcuse(&res, "an intermediary cannot", "mcp-proxy", "na.yaml")
		if res.Verdict != tc.want || p != tc.problem {
			t.Errorf("%s: verdict %s, problem %q; want %s, %q", tc.verdict, res.Verdict, p, tc.want, tc.problem)
		}
	}
}

// TestServerArgs: a scenario run alone (the rerun of a difference) is
// forced, so an extension scenario of the requirement set is not skipped
// as off the spec's timeline; the whole set is run by its revision.
func TestServerArgs(t *testing.T) {
	alone := strings.Join(serverArgs("http://x/mcp", "out", "2026-07-28", "tasks-request-headers"), " ")
	if want := "server --url http://x/mcp -o out --scenario tasks-request-headers --spec-version 2026-07-28 --force"; alone != want {
		t.Errorf("one scenario: %q, want %q", alone, want)
	}
	all := strings.Join(serverArgs("http://x/mcp", "out", "2026-07-28", ""), " ")
	if want := "server --url http://x/mcp -o out --requirements 2026-07-28"; all != want {
		t.Errorf("the set: %q, want %q", all, want)
	}
}
