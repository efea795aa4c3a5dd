package mcpconformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of one scenario for one client.
const (
	Passed        = "passed"
	Failed        = "failed"
	NotApplicable = "not applicable"
	// AsDirect is the verdict of a scenario that fails through the proxy
	// with exactly the failing checks it has against the server directly
	// (the server leg): the proxy changed nothing.
	AsDirect = "failed as direct"
	// NotRun marks a scenario a client does not run, with the reason.
	NotRun = "not run"
)

// Check is one check of the suite's checks.json, as far as a report needs.
type Check struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Status       string `json:"status"` // SUCCESS, FAILURE, WARNING, INFO, SKIPPED
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// The statuses the suite counts: a WARNING fails a scenario as a FAILURE
// does.
const (
	statusSuccess = "SUCCESS"
	statusFailure = "FAILURE"
	statusWarning = "WARNING"
	statusSkipped = "SKIPPED"
)

// ScenarioResult is one scenario run by one client.
type ScenarioResult struct {
	Scenario     string `json:"scenario"`
	ChecksPassed int    `json:"checks_passed"`
	// ChecksFailed counts FAILURE and WARNING checks: the suite fails a
	// scenario on either.
	ChecksFailed int    `json:"checks_failed"`
	Verdict      string `json:"verdict"`
	// Reason says why a scenario failed (its failing checks, or what the
	// client said when it gave up) or, for one that cannot apply, the
	// checked-in reason.
	Reason string `json:"reason,omitempty"`
	// FailedChecks are the failing checks with the suite's explanation.
	FailedChecks []Check `json:"failed_checks,omitempty"`
	// SuiteExit is the suite's exit code for the scenario.
	SuiteExit int     `json:"suite_exit"`
	Seconds   float64 `json:"seconds"`
	// Dir is where the suite left checks.json, stdout.txt and stderr.txt.
	Dir string `json:"dir"`
	// Scored is false for a scenario the requirement set runs but does
	// not score (an extension, a pending scenario).
	Scored bool `json:"scored"`
	// Warnings counts the WARNING checks among ChecksFailed.
	Warnings int `json:"warnings,omitempty"`
	// Skipped are the checks the suite skipped, with its reason.
	Skipped []string `json:"skipped,omitempty"`
}

// failures is the scenario's failure set: the ids of its FAILURE checks,
// sorted, each once.
func (s *ScenarioResult) failures() []string {
	var ids []string
	for _, c := range s.FailedChecks {
		if c.Status == statusFailure && !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// ClientResult is one client's run of every scenario of a leg.
type ClientResult struct {
	// Client names it: "mcp-proxy", or "baseline" for the run without the
	// proxy.
	Client string `json:"client"`
	// Description says what ran.
	Description   string `json:"description"`
	Passed        int    `json:"passed"`
	Failed        int    `json:"failed"`
	NotApplicable int    `json:"not_applicable"`
	// AsDirect counts the scenarios that fail exactly as they do direct.
	AsDirect int `json:"as_direct,omitempty"`
	// NotRun counts the scenarios the client does not run.
	NotRun    int              `json:"not_run,omitempty"`
	Total     int              `json:"total"`
	Seconds   float64          `json:"seconds"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// ClosingLine is the line a leg ends with, for this client.
func (c *ClientResult) ClosingLine(leg string) string {
	var extra string
	if c.Failed > 0 {
		extra += fmt.Sprintf(", %d failed", c.Failed)
	}
	if c.AsDirect > 0 {
		extra += fmt.Sprintf(", %d failed as they do direct", c.AsDirect)
	}
	if c.NotRun > 0 {
		extra += fmt.Sprintf(", %d not run", c.NotRun)
	}
	return fmt.Sprintf("mcp-conformance %s: %d of %d scenarios passed, %d not applicable%s (%s)", leg, c.Passed, c.Total, c.NotApplicable, extra, c.Description)
}

// The legs: the three faces of the proxy the suite grades.
const (
	// LegClient is the proxy as an OAuth and MCP client towards remote
	// servers: the suite's client mode.
	LegClient = "client"
	// LegAuthorization is the proxy's own authorization server: the
	// suite's authorization mode.
	LegAuthorization = "authorization"
	// LegServer is the proxy as the MCP server its users' clients reach:
	// the suite's server mode, through a route and direct.
	LegServer = "server"
)

// Leg is one mode of the suite against one face of the proxy.
type Leg struct {
	// Name is LegClient, LegAuthorization or LegServer.
	Name string `json:"name"`
	// Title and Description say what the leg grades and how.
	Title       string `json:"title"`
	Description string `json:"description"`
	// Requirements names the requirement sets whose scenarios ran.
	Requirements []string `json:"requirements,omitempty"`
	// Clients are the run through the proxy, then the baseline's.
	Clients []ClientResult `json:"clients"`
	Seconds float64        `json:"seconds"`
}

// Client returns the named client's results, or nil.
func (l *Leg) Client(name string) *ClientResult {
	for i := range l.Clients {
		if l.Clients[i].Client == name {
			return &l.Clients[i]
		}
	}
	return nil
}

// Report is the whole run: what make site publishes.
type Report struct {
	Suite        string    `json:"suite"`
	SuiteVersion string    `json:"suite_version"`
	NodeVersion  string    `json:"node_version"`
	Commit       string    `json:"commit"`
	Dirty        bool      `json:"dirty"`
	GoVersion    string    `json:"go_version"`
	Time         time.Time `json:"time"`
	WallSeconds  float64   `json:"wall_seconds"`
	Command      string    `json:"command"`
	// Fixture names the MCP server the server leg ran (the MCP Go SDK's
	// everything-server and its version).
	Fixture string `json:"fixture,omitempty"`
	// Legs are the legs that ran, in the order client, authorization,
	// server.
	Legs []Leg `json:"legs"`
	// Failures are the failing scenarios through the proxy: they fail the
	// run when it is required (MCP_CONFORMANCE_REQUIRED=1).
	Failures []string `json:"failures,omitempty"`
	// Problems fail the run whether it is required or not: a failing
	// scenario of a baseline (the harness itself is broken), an excuse
	// that no longer holds, a leg that could not run.
	Problems []string `json:"problems,omitempty"`
}

// Leg returns the named leg, or nil.
func (r *Report) Leg(name string) *Leg {
	for i := range r.Legs {
		if r.Legs[i].Name == name {
			return &r.Legs[i]
		}
	}
	return nil
}

// SummaryLine is the run's one line for make test: each leg's score
// through the proxy (for the server leg, the scenarios whose failures are
// those of the direct run).
func (r *Report) SummaryLine() string {
	var parts []string
	na := 0
	for _, l := range r.Legs {
		if len(l.Clients) == 0 {
			continue
		}
		c := l.Clients[0]
		if l.Name == LegServer {
			parts = append(parts, fmt.Sprintf("%s %d of %d as direct", l.Name, c.Passed+c.AsDirect, c.Total))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d of %d passed", l.Name, c.Passed, c.Total))
		}
		na += c.NotApplicable
	}
	return fmt.Sprintf("mcp-conformance: %s, %d not applicable (through mcp-proxy)", strings.Join(parts, ", "), na)
}

// ReportFile is the report's name in the output directory.
const ReportFile = "results.json"

// Write writes the report as dir/results.json.
func (r *Report) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportFile), append(b, '\n'), 0o644)
}

// ReadReport reads a report written by Write.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WriteTable prints the leg's per-scenario table: each scenario's checks
// and verdict through the proxy and with the baseline, and the reason for
// a verdict other than passed.
func (l *Leg) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "scenario")
	for _, c := range l.Clients {
		fmt.Fprintf(tw, "\t%s checks\t%s", c.Client, c.Client)
	}
	fmt.Fprint(tw, "\treason\n")
	if len(l.Clients) == 0 {
		return tw.Flush()
	}
	for i, s := range l.Clients[0].Scenarios {
		name := s.Scenario
		if !s.Scored {
			name += " (not scored)"
		}
		fmt.Fprint(tw, name)
		var reasons []string
		for _, c := range l.Clients {
			if i >= len(c.Scenarios) {
				fmt.Fprint(tw, "\t-\t-")
				continue
			}
			cs := c.Scenarios[i]
			if cs.Verdict == NotRun {
				fmt.Fprintf(tw, "\t-\t%s", cs.Verdict)
			} else {
				fmt.Fprintf(tw, "\t%d passed, %d failed\t%s", cs.ChecksPassed, cs.ChecksFailed, cs.Verdict)
			}
			if cs.Reason != "" {
				reasons = append(reasons, c.Client+": "+oneLine(cs.Reason, 140))
			}
		}
		fmt.Fprintf(tw, "\t%s\n", strings.Join(reasons, "; "))
	}
	return tw.Flush()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}
