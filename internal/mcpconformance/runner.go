package mcpconformance

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-proxy/mcp-proxy/internal/results"
)

// preload is the Node module the suite runs with (node --import): it binds
// the suite's servers to loopback, maps the stack's names, and adds the
// MCP client's token and HTTPS where the suite cannot (its header says
// how).
//
//go:embed suite/preload.mjs
var preload []byte

// PreloadFile is the preload's name in the suite's directory, beside
// node_modules, whose undici it imports.
const PreloadFile = "preload.mjs"

// Suite is an installed copy of the official suite and the Node that runs
// it (make mcp-conformance installs both from npm into the build
// directory).
type Suite struct {
	// Node is the node binary (Node 22: the suite needs fs.globSync).
	Node string
	// Package is the suite's package directory
	// (node_modules/@modelcontextprotocol/conformance).
	Package string
	// Preload is the path of the preload module (WritePreload writes it).
	Preload string
}

// WritePreload writes the preload module into dir, the directory the suite
// is installed in, and sets Preload.
func (s *Suite) WritePreload(dir string) error {
	s.Preload = filepath.Join(dir, PreloadFile)
	return os.WriteFile(s.Preload, preload, 0o644)
}

// Command is a run of the suite with args (a mode and its options), with
// the preload and env added to this process's environment.
func (s Suite) Command(ctx context.Context, env map[string]string, args ...string) *exec.Cmd {
	all := []string{filepath.Join(s.Package, "dist", "index.js")}
	if s.Preload != "" {
		all = append([]string{"--import", "file://" + s.Preload}, all...)
	}
	cmd := exec.CommandContext(ctx, s.Node, append(all, args...)...)
	// The suite's own colours would clutter the saved output.
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// A suite that is told to stop gets a moment to close its servers.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Version is the suite's version, from its package.json.
func (s Suite) Version() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.Package, "package.json"))
	if err != nil {
		return "", err
	}
	var p struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return "", err
	}
	return p.Version, nil
}

// NodeVersion is what node --version says.
func (s Suite) NodeVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, s.Node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", s.Node, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Requirements is a frozen requirement set of the suite
// (requirements/REVISION.yaml): the scenarios conformance to a protocol
// revision requires, and those it runs without scoring.
type Requirements struct {
	Revision  string
	Server    []string    `yaml:"server"`
	Client    []string    `yaml:"client"`
	NotScored []NotScored `yaml:"not_scored"`
}

// NotScored is a scenario a requirement set runs without scoring it, and
// why: "extension", "pending", "added-after-release".
type NotScored struct {
	Scenario string `yaml:"scenario"`
	Leg      string `yaml:"leg"`
	Reason   string `yaml:"reason"`
}

// File is the requirement set's path inside the suite's package.
func (r *Requirements) File() string { return "requirements/" + r.Revision + ".yaml" }

// Requirements reads the suite's requirement set for revision.
func (s Suite) Requirements(revision string) (*Requirements, error) {
	path := filepath.Join(s.Package, "requirements", revision+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	req := &Requirements{Revision: revision}
	if err := yaml.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(req.Client) == 0 || len(req.Server) == 0 {
		return nil, fmt.Errorf("%s scores no client or no server scenario", path)
	}
	return req, nil
}

// Extension returns the not-scored extension scenarios of leg among
// names, failing when the set does not list one of them: the harness runs
// them by name, so a suite that dropped one must not pass unnoticed.
func (r *Requirements) Extension(leg string, names ...string) ([]string, error) {
	for _, n := range names {
		if !slices.ContainsFunc(r.NotScored, func(e NotScored) bool { return e.Scenario == n && e.Leg == leg && e.Reason == "extension" }) {
			return nil, fmt.Errorf("%s does not list %s as a %s extension scenario", r.File(), n, leg)
		}
	}
	return names, nil
}

// NotScoredAs is the set's reason for running the scenario name of leg
// without scoring it; "" when the set scores it or does not name it.
func (r *Requirements) NotScoredAs(leg, name string) string {
	for _, e := range r.NotScored {
		if e.Scenario == name && e.Leg == leg {
			return e.Reason
		}
	}
	return ""
}

// Scored reports whether the set scores the server scenario name.
func (r *Requirements) Scored(leg, name string) bool {
	if leg == LegServer {
		return slices.Contains(r.Server, name)
	}
	return slices.Contains(r.Client, name)
}

// Excuse is an entry of the not-applicable file.
type Excuse struct {
	Leg      string `yaml:"leg"`
	Scenario string `yaml:"scenario"`
	Reason   string `yaml:"reason"`
}

// Excuses are the not-applicable file's entries: leg → scenario → reason.
type Excuses map[string]map[string]string

// ReadExcuses reads the not-applicable file: every entry needs a leg, a
// scenario and a reason, once.
func ReadExcuses(path string) (Excuses, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []Excuse
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := Excuses{}
	for i, e := range list {
		switch {
		case e.Scenario == "" || strings.TrimSpace(e.Reason) == "":
			return nil, fmt.Errorf("%s: entry %d needs a scenario and a reason", path, i+1)
		case e.Leg != LegClient && e.Leg != LegAuthorization && e.Leg != LegServer:
			return nil, fmt.Errorf("%s: entry %d (%s): leg %q is not %s, %s or %s", path, i+1, e.Scenario, e.Leg, LegClient, LegAuthorization, LegServer)
		case out[e.Leg][e.Scenario] != "":
			return nil, fmt.Errorf("%s: %s %s is listed twice", path, e.Leg, e.Scenario)
		}
		if out[e.Leg] == nil {
			out[e.Leg] = map[string]string{}
		}
		out[e.Leg][e.Scenario] = strings.Join(strings.Fields(e.Reason), " ")
	}
	return out, nil
}

// Runner runs the suite's client scenarios with one client command.
type Runner struct {
	Suite Suite
	// Command is the client command the suite runs; it appends the
	// scenario server's URL.
	Command string
	// SpecVersion is passed as --spec-version.
	SpecVersion string
	// Timeout bounds the client command in one scenario.
	Timeout time.Duration
	// Out is the directory for the suite's results (one directory per
	// scenario under it).
	Out string
	// Log, when set, receives the suite's output.
	Log io.Writer
	// Force are scenarios that run although the spec version does not
	// name them (extension scenarios, off the spec's timeline).
	Force []string
}

// Run runs one scenario and judges it from the suite's checks and exit
// code.
func (r Runner) Run(ctx context.Context, scenario string) ScenarioResult {
	res := ScenarioResult{Scenario: scenario, Verdict: Failed}
	dir := filepath.Join(r.Out, strings.ReplaceAll(scenario, "/", "_"))
	if err := os.RemoveAll(dir); err != nil {
		res.Reason = err.Error()
		return res
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Reason = err.Error()
		return res
	}
	res.Dir = dir
	args := []string{"client", "--command", r.Command, "--scenario", scenario, "--spec-version", r.SpecVersion,
		"--timeout", fmt.Sprint(r.Timeout.Milliseconds()), "-o", dir}
	if slices.Contains(r.Force, scenario) {
		args = append(args, "--force")
	}
	cmd := r.Suite.Command(ctx, nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if r.Log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, r.Log), io.MultiWriter(&out, r.Log)
	}
	start := time.Now()
	err := cmd.Run()
	res.Seconds = time.Since(start).Seconds()
	_ = os.WriteFile(filepath.Join(dir, "suite-output.txt"), out.Bytes(), 0o644)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.SuiteExit = exit.ExitCode()
	case err != nil:
		res.SuiteExit = -1
		res.Reason = "the suite did not run: " + err.Error()
		return res
	}
	checksFile, err := findFile(dir, "checks.json")
	if err != nil {
		res.Reason = fmt.Sprintf("the suite wrote no checks.json (exit %d): %s", res.SuiteExit, lastLines(out.String(), 3))
		return res
	}
	res.Dir = filepath.Dir(checksFile)
	checks, err := readChecks(checksFile)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	stderr, _ := os.ReadFile(filepath.Join(res.Dir, "stderr.txt"))
	j := Judge(checks, res.SuiteExit, string(stderr), strings.Contains(out.String(), "Client timed out"))
	res.Verdict, res.Reason, res.ChecksPassed, res.ChecksFailed, res.Warnings, res.FailedChecks = j.Verdict, j.Reason, j.ChecksPassed, j.ChecksFailed, j.Warnings, j.FailedChecks
	return res
}

// readChecks reads a checks.json the suite wrote.
func readChecks(path string) ([]Check, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var checks []Check
	if err := json.Unmarshal(b, &checks); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return checks, nil
}

// findFile finds the first file called name under dir.
func findFile(dir, name string) (string, error) {
	var found string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == name {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err == nil && found == "" {
		err = fs.ErrNotExist
	}
	return found, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// lastErrorLine is the client command's own last line of stderr, past the
// proxy's log.
func lastErrorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}

// Client is one client the client leg grades.
type Client struct {
	Name, Description string
	Command           string
	// Excuses are the scenarios that cannot apply to it, with the reason.
	Excuses map[string]string
	// NotRun are the scenarios it does not run, with the reason.
	NotRun map[string]string
	// Gated makes its failing scenarios fail the run only when the run is
	// required; a client that is not gated (the baseline) fails it always.
	Gated bool
}

// ClientCredentialsScenarios are the client credentials extension
// scenarios (io.modelcontextprotocol/oauth-client-credentials): what a
// service_account route with client_credentials does.
var ClientCredentialsScenarios = []string{"auth/client-credentials-basic", "auth/client-credentials-jwt"}

// WorkloadScenarios are the workload identity extension's
// (io.modelcontextprotocol/auth/wif, SEP-1933): what a service_account
// route with workload_identity does.
var WorkloadScenarios = []string{"auth/wif-jwt-bearer"}

// EnterpriseScenarios are the enterprise-managed authorization
// extension's (io.modelcontextprotocol/enterprise-managed-authorization,
// SEP-990): what an enterprise route does.
var EnterpriseScenarios = []string{"auth/enterprise-managed-authorization"}

// DPoPScenarios are the DPoP extension's (io.modelcontextprotocol/auth/dpop,
// SEP-1932): what a route whose remote server asks for DPoP-bound tokens
// does, without a nonce and with the nonces of both servers.
var DPoPScenarios = []string{"auth/dpop", "auth/dpop-nonce"}

// ExtensionScenarios are the extension scenarios the client leg runs
// beside the scored ones, marked "extension" in its table.
var ExtensionScenarios = slices.Concat(ClientCredentialsScenarios, WorkloadScenarios, EnterpriseScenarios, DPoPScenarios)

// Config is one whole run.
type Config struct {
	Suite Suite
	// Revision is the requirement set of the client leg (also its
	// --spec-version) and of the server leg's stateless half.
	Revision string
	// StatefulRevision is the requirement set of the server leg's stateful
	// half (2025-11-25: sessions, Mcp-Session-Id).
	StatefulRevision string
	// Legs are the legs to run (LegClient, LegAuthorization, LegServer).
	Legs []string
	// Clients are the client leg's clients: through the proxy, then the
	// baseline.
	Clients []Client
	// EverythingServer is the MCP Go SDK's conformance fixture, the server
	// leg's remote MCP server; Fixture names it and its version.
	EverythingServer, Fixture string
	// Excuses are the not-applicable file's entries, by leg.
	Excuses     Excuses
	Timeout     time.Duration
	Out         string
	ExcusesFile string // named in problems
	RepoDir     string // for the commit
	Command     string // how to reproduce the run
	// Progress, when set, gets one line per scenario as it finishes;
	// SuiteLog the suite's own output.
	Progress, SuiteLog io.Writer
}

func (cfg *Config) progress(format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format, args...)
	}
}

// RunAll runs the configured legs, one after the other, and judges the
// run.
func RunAll(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	version, err := cfg.Suite.Version()
	if err != nil {
		return nil, fmt.Errorf("the suite is not installed (make mcp-conformance-install): %w", err)
	}
	node, err := cfg.Suite.NodeVersion(ctx)
	if err != nil {
		return nil, err
	}
	commit, dirty := results.GitState(cfg.RepoDir)
	rep := &Report{
		Suite: "@modelcontextprotocol/conformance", SuiteVersion: version, NodeVersion: node,
		Commit: commit, Dirty: dirty, GoVersion: runtime.Version(), Time: start.UTC(), Command: cfg.Command,
	}
	for _, leg := range cfg.Legs {
		legStart := time.Now()
		var l *Leg
		var failures, problems []string
		switch leg {
		case LegClient:
			l, failures, problems, err = runClientLeg(ctx, &cfg)
		case LegAuthorization:
			l, failures, problems, err = runAuthorizationLeg(ctx, &cfg)
		case LegServer:
			rep.Fixture = cfg.Fixture
			l, failures, problems, err = runServerLeg(ctx, &cfg)
		default:
			return nil, fmt.Errorf("no leg is called %q (%s, %s, %s)", leg, LegClient, LegAuthorization, LegServer)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			// A leg that cannot run is a failure of the run, not a skip.
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s leg: could not run: %v", leg, err))
			continue
		}
		l.Seconds = time.Since(legStart).Seconds()
		rep.Legs = append(rep.Legs, *l)
		rep.Failures = append(rep.Failures, failures...)
		rep.Problems = append(rep.Problems, problems...)
	}
	rep.WallSeconds = time.Since(start).Seconds()
	return rep, nil
}

// runClientLeg runs every client scenario the revision scores, and the
// extension scenarios (ExtensionScenarios), with each client, one at a
// time.
func runClientLeg(ctx context.Context, cfg *Config) (*Leg, []string, []string, error) {
	req, err := cfg.Suite.Requirements(cfg.Revision)
	if err != nil {
		return nil, nil, nil, err
	}
	ext, err := req.Extension(LegClient, ExtensionScenarios...)
	if err != nil {
		return nil, nil, nil, err
	}
	scenarios := append(slices.Clone(req.Client), ext...)
	leg := &Leg{Name: LegClient, Title: "The proxy as an OAuth client", Requirements: []string{req.File()},
		Description: "Each client scenario starts an MCP server and, for the auth scenarios, an authorization server that behave in one particular way, runs a client against them and checks what the client sent. Through mcp-proxy, the route's to is the scenario's server: a user's MCP client signs in at the proxy, and the proxy is the client the scenario grades."}
	var failures, problems []string
	for _, cl := range cfg.Clients {
		r := Runner{Suite: cfg.Suite, Command: cl.Command, SpecVersion: cfg.Revision, Timeout: cfg.Timeout,
			Out: filepath.Join(cfg.Out, LegClient, cl.Name), Log: cfg.SuiteLog, Force: ext}
		run := func(sc string) ScenarioResult {
			res := r.Run(ctx, sc)
			res.Scored = req.Scored(LegClient, sc)
			cfg.progress("mcp-conformance client: %-10s %-40s %d passed, %d failed (%.1fs)\n", cl.Name, sc, res.ChecksPassed, res.ChecksFailed, res.Seconds)
			return res
		}
		if cl.Gated {
			cl.Excuses = cfg.Excuses[LegClient]
		}
		cr, f, p := Grade(cl, scenarios, run, cfg.ExcusesFile, req.File())
		for i := range cr.Scenarios {
			cr.Scenarios[i].Scored = req.Scored(LegClient, cr.Scenarios[i].Scenario)
			cr.Scenarios[i].NotScoredAs = req.NotScoredAs(LegClient, cr.Scenarios[i].Scenario)
		}
		leg.Clients = append(leg.Clients, cr)
		if cl.Gated {
			failures = append(failures, f...)
		} else {
			problems = append(problems, f...)
		}
		problems = append(problems, p...)
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
	}
	return leg, failures, problems, nil
}

// Grade runs every scenario with run and grades the client: a failing
// scenario is a failure unless the client's excuses name it, in which case
// it is not applicable; an excuse whose scenario passes, or that names no
// scenario of the run, is a problem. A scenario the client does not run is
// not run, with its reason.
func Grade(cl Client, scenarios []string, run func(scenario string) ScenarioResult, excusesFile, requirements string) (cr ClientResult, failures, problems []string) {
	cr = ClientResult{Client: cl.Name, Description: cl.Description, Total: len(scenarios)}
	problems = staleExcuses(cl.Name, cl.Excuses, scenarios, excusesFile, requirements)
	start := time.Now()
	for _, sc := range scenarios {
		var res ScenarioResult
		if why, skip := cl.NotRun[sc]; skip {
			res = ScenarioResult{Scenario: sc, Verdict: NotRun, Reason: why}
		} else {
			res = run(sc)
		}
		if reason, ok := cl.Excuses[sc]; ok {
			if p := applyExcuse(&res, reason, cl.Name, excusesFile); p != "" {
				problems = append(problems, p)
			}
		}
		cr.count(res, &failures)
		cr.Scenarios = append(cr.Scenarios, res)
	}
	cr.Seconds = time.Since(start).Seconds()
	return cr, failures, problems
}

// count adds one scenario's verdict to the client's counts, and a failure
// to failures.
func (cr *ClientResult) count(res ScenarioResult, failures *[]string) {
	switch res.Verdict {
	case Passed:
		cr.Passed++
	case NotApplicable:
		cr.NotApplicable++
	case AsDirect:
		cr.AsDirect++
	case NotRun:
		cr.NotRun++
	default:
		cr.Failed++
		*failures = append(*failures, fmt.Sprintf("%s: %s failed: %s", cr.Client, res.Scenario, oneLine(res.Reason, 300)))
	}
}

// applyExcuse holds a result of the proxy to the not-applicable file's
// reason for it: a failure becomes not applicable; a scenario that passes
// (or, in the server leg, fails only as it does direct) no longer needs
// the excuse, which is a problem until it is removed.
func applyExcuse(res *ScenarioResult, reason, client, excusesFile string) (problem string) {
	switch res.Verdict {
	case Failed:
		res.Verdict, res.Reason = NotApplicable, reason
		return ""
	case AsDirect:
		return fmt.Sprintf("%s: %s scores as direct now: remove it from %s", client, res.Scenario, excusesFile)
	}
	return fmt.Sprintf("%s: %s passes now: remove it from %s", client, res.Scenario, excusesFile)
}

// staleExcuses are the problems of excuses that name no scenario of the
// run.
func staleExcuses(client string, excuses map[string]string, scenarios []string, excusesFile, requirements string) []string {
	names := make([]string, 0, len(excuses))
	for name := range excuses {
		names = append(names, name)
	}
	slices.Sort(names)
	var problems []string
	for _, name := range names {
		if !slices.Contains(scenarios, name) {
			problems = append(problems, fmt.Sprintf("%s: %s names %s, which %s does not run: remove it", client, excusesFile, name, requirements))
		}
	}
	return problems
}

// Judge grades one scenario as the suite counts it: a FAILURE or a WARNING
// check fails it, and so does the suite's non-zero exit (the client gave
// up, or timed out) when no check says why. stderr is the client's, for
// the reason. It fills the verdict, the reason and the check counts.
func Judge(checks []Check, suiteExit int, stderr string, timedOut bool) ScenarioResult {
	j := countChecks(checks)
	var reasons []string
	for _, c := range j.FailedChecks {
		msg := c.ErrorMessage
		if msg == "" {
			msg = c.Description
		}
		reasons = append(reasons, fmt.Sprintf("%s %s: %s", c.ID, strings.ToLower(c.Status), msg))
	}
	switch {
	case j.ChecksFailed == 0 && suiteExit == 0:
		j.Verdict = Passed
		return j
	case len(reasons) > 0:
		j.Verdict, j.Reason = Failed, strings.Join(reasons, "; ")
		return j
	}
	why := "the suite failed the scenario (exit " + fmt.Sprint(suiteExit) + ") with no failing check"
	if timedOut {
		why = "the client timed out"
	}
	if l := lastErrorLine(stderr); l != "" {
		why += "; the client said: " + l
	}
	j.Verdict, j.Reason = Failed, why
	return j
}

// countChecks counts a scenario's passing and failing checks (FAILURE and
// WARNING) and keeps the failing ones.
func countChecks(checks []Check) ScenarioResult {
	var j ScenarioResult
	for _, c := range checks {
		switch c.Status {
		case statusSuccess:
			j.ChecksPassed++
		case statusFailure, statusWarning:
			j.ChecksFailed++
			if c.Status == statusWarning {
				j.Warnings++
			}
			j.FailedChecks = append(j.FailedChecks, c)
		case statusSkipped:
			msg := c.ErrorMessage
			if msg == "" {
				msg = c.Description
			}
			j.Skipped = append(j.Skipped, c.ID+": "+msg)
		}
	}
	return j
}
