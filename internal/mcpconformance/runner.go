package mcpconformance

import (
	"bytes"
	"context"
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

// Suite is an installed copy of the official suite and the Node that runs
// it (make mcp-conformance installs both from npm into the build
// directory).
type Suite struct {
	// Node is the node binary (Node 22: the suite needs fs.globSync).
	Node string
	// Package is the suite's package directory
	// (node_modules/@modelcontextprotocol/conformance).
	Package string
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

// ClientAuthScenarios are the client auth scenarios (auth/*) that the
// suite's frozen requirement set for revision scores, in its order.
func (s Suite) ClientAuthScenarios(revision string) ([]string, error) {
	path := filepath.Join(s.Package, "requirements", revision+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var req struct {
		Client []string `yaml:"client"`
	}
	if err := yaml.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []string
	for _, sc := range req.Client {
		if strings.HasPrefix(sc, "auth/") {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s scores no client auth scenario", path)
	}
	return out, nil
}

// Excuse is an entry of the not-applicable file.
type Excuse struct {
	Scenario string `yaml:"scenario"`
	Reason   string `yaml:"reason"`
}

// ReadExcuses reads the not-applicable file: every entry needs a scenario
// and a reason, once.
func ReadExcuses(path string) (map[string]string, error) {
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
	out := make(map[string]string)
	for i, e := range list {
		switch {
		case e.Scenario == "" || strings.TrimSpace(e.Reason) == "":
			return nil, fmt.Errorf("%s: entry %d needs a scenario and a reason", path, i+1)
		case out[e.Scenario] != "":
			return nil, fmt.Errorf("%s: %s is listed twice", path, e.Scenario)
		}
		out[e.Scenario] = strings.Join(strings.Fields(e.Reason), " ")
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
	args := []string{filepath.Join(r.Suite.Package, "dist", "index.js"), "client",
		"--command", r.Command, "--scenario", scenario, "--spec-version", r.SpecVersion,
		"--timeout", fmt.Sprint(r.Timeout.Milliseconds()), "-o", dir}
	cmd := exec.CommandContext(ctx, r.Suite.Node, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if r.Log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, r.Log), io.MultiWriter(&out, r.Log)
	}
	// The suite's own colours would clutter the saved output.
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
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
	b, err := os.ReadFile(checksFile)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	var checks []Check
	if err := json.Unmarshal(b, &checks); err != nil {
		res.Reason = fmt.Sprintf("%s: %v", checksFile, err)
		return res
	}
	stderr, _ := os.ReadFile(filepath.Join(res.Dir, "stderr.txt"))
	j := Judge(checks, res.SuiteExit, string(stderr), strings.Contains(out.String(), "Client timed out"))
	res.Verdict, res.Reason, res.ChecksPassed, res.ChecksFailed, res.FailedChecks = j.Verdict, j.Reason, j.ChecksPassed, j.ChecksFailed, j.FailedChecks
	return res
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

// Client is one client the run grades.
type Client struct {
	Name, Description string
	Command           string
	// Excuses are the scenarios that cannot apply to it, with the reason.
	Excuses map[string]string
	// Gated makes its failing scenarios fail the run only when the run is
	// required; a client that is not gated (the baseline) fails it always.
	Gated bool
}

// Config is one whole run.
type Config struct {
	Suite       Suite
	Revision    string // the requirement set, also the --spec-version
	Clients     []Client
	Timeout     time.Duration
	Out         string
	ExcusesFile string // named in problems
	RepoDir     string // for the commit
	Command     string // how to reproduce the run
	// Progress, when set, gets one line per scenario as it finishes;
	// SuiteLog the suite's own output.
	Progress, SuiteLog io.Writer
}

// RunAll runs every scored client auth scenario with each client, one at a
// time, and judges the run.
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
	scenarios, err := cfg.Suite.ClientAuthScenarios(cfg.Revision)
	if err != nil {
		return nil, err
	}
	commit, dirty := results.GitState(cfg.RepoDir)
	rep := &Report{
		Suite: "@modelcontextprotocol/conformance", SuiteVersion: version, NodeVersion: node,
		SpecVersion: cfg.Revision, Requirements: "requirements/" + cfg.Revision + ".yaml",
		Commit: commit, Dirty: dirty, GoVersion: runtime.Version(), Time: start.UTC(), Command: cfg.Command,
	}
	for _, cl := range cfg.Clients {
		r := Runner{Suite: cfg.Suite, Command: cl.Command, SpecVersion: cfg.Revision, Timeout: cfg.Timeout,
			Out: filepath.Join(cfg.Out, cl.Name), Log: cfg.SuiteLog}
		run := func(sc string) ScenarioResult {
			res := r.Run(ctx, sc)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "mcp-conformance: %-10s %-40s %d passed, %d failed (%.1fs)\n", cl.Name, sc, res.ChecksPassed, res.ChecksFailed, res.Seconds)
			}
			return res
		}
		cr, failures, problems := Grade(cl, scenarios, run, cfg.ExcusesFile, rep.Requirements)
		rep.Clients = append(rep.Clients, cr)
		if cl.Gated {
			rep.Failures = append(rep.Failures, failures...)
		} else {
			rep.Problems = append(rep.Problems, failures...)
		}
		rep.Problems = append(rep.Problems, problems...)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep.WallSeconds = time.Since(start).Seconds()
	return rep, nil
}

// Grade runs every scenario with run and grades the client: a failing
// scenario is a failure unless the client's excuses name it, in which case
// it is not applicable; an excuse whose scenario passes, or that names no
// scenario of the run, is a problem.
func Grade(cl Client, scenarios []string, run func(scenario string) ScenarioResult, excusesFile, requirements string) (cr ClientResult, failures, problems []string) {
	cr = ClientResult{Client: cl.Name, Description: cl.Description, Total: len(scenarios)}
	names := make([]string, 0, len(cl.Excuses))
	for name := range cl.Excuses {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(scenarios, name) {
			problems = append(problems, fmt.Sprintf("%s: %s names %s, which %s does not score: remove it", cl.Name, excusesFile, name, requirements))
		}
	}
	start := time.Now()
	for _, sc := range scenarios {
		res := run(sc)
		if reason, ok := cl.Excuses[sc]; ok {
			if res.Verdict == Passed {
				problems = append(problems, fmt.Sprintf("%s: %s passes now: remove it from %s", cl.Name, sc, excusesFile))
			} else {
				res.Verdict, res.Reason = NotApplicable, reason
			}
		}
		switch res.Verdict {
		case Passed:
			cr.Passed++
		case NotApplicable:
			cr.NotApplicable++
		default:
			cr.Failed++
			failures = append(failures, fmt.Sprintf("%s: %s failed: %s", cl.Name, sc, oneLine(res.Reason, 300)))
		}
		cr.Scenarios = append(cr.Scenarios, res)
	}
	cr.Seconds = time.Since(start).Seconds()
	return cr, failures, problems
}

// Judge grades one scenario as the suite counts it: a FAILURE or a WARNING
// check fails it, and so does the suite's non-zero exit (the client gave
// up, or timed out) when no check says why. stderr is the client's, for
// the reason. It fills the verdict, the reason and the check counts.
func Judge(checks []Check, suiteExit int, stderr string, timedOut bool) ScenarioResult {
	var j ScenarioResult
	var reasons []string
	for _, c := range checks {
		switch c.Status {
		case statusSuccess:
			j.ChecksPassed++
		case statusFailure, statusWarning:
			j.ChecksFailed++
			j.FailedChecks = append(j.FailedChecks, c)
			msg := c.ErrorMessage
			if msg == "" {
				msg = c.Description
			}
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", c.ID, strings.ToLower(c.Status), msg))
		}
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
