package mcpconformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of one scenario for one client.
const (
	Passed        = "passed"
	Failed        = "failed"
	NotApplicable = "not applicable"
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
}

// ClientResult is one client's run of every scenario.
type ClientResult struct {
	// Client names it: "mcp-proxy" or "baseline".
	Client string `json:"client"`
	// Description says what ran.
	Description   string           `json:"description"`
	Passed        int              `json:"passed"`
	Failed        int              `json:"failed"`
	NotApplicable int              `json:"not_applicable"`
	Total         int              `json:"total"`
	Seconds       float64          `json:"seconds"`
	Scenarios     []ScenarioResult `json:"scenarios"`
}

// ClosingLine is the line a run ends with.
func (c *ClientResult) ClosingLine() string {
	return fmt.Sprintf("mcp-conformance: %d of %d scenarios passed, %d not applicable (%s)", c.Passed, c.Total, c.NotApplicable, c.Description)
}

// Report is the whole run: what make site publishes.
type Report struct {
	Suite        string    `json:"suite"`
	SuiteVersion string    `json:"suite_version"`
	NodeVersion  string    `json:"node_version"`
	SpecVersion  string    `json:"spec_version"`
	Requirements string    `json:"requirements"`
	Commit       string    `json:"commit"`
	Dirty        bool      `json:"dirty"`
	GoVersion    string    `json:"go_version"`
	Time         time.Time `json:"time"`
	WallSeconds  float64   `json:"wall_seconds"`
	Command      string    `json:"command"`
	// Clients are the proxy's run and the baseline's, in that order.
	Clients []ClientResult `json:"clients"`
	// Failures are the failing scenarios of the clients whose score is
	// gated (the proxy's): they fail the run when it is required
	// (MCP_CONFORMANCE_REQUIRED=1).
	Failures []string `json:"failures,omitempty"`
	// Problems fail the run whether it is required or not: a failing
	// scenario of the baseline (the harness itself is broken), an excuse
	// that no longer holds.
	Problems []string `json:"problems,omitempty"`
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

// Client returns the named client's results, or nil.
func (r *Report) Client(name string) *ClientResult {
	for i := range r.Clients {
		if r.Clients[i].Client == name {
			return &r.Clients[i]
		}
	}
	return nil
}

// WriteTable prints the per-scenario table: each scenario's checks and
// verdict through the proxy and with the baseline, and the reason for a
// verdict other than passed.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "scenario")
	for _, c := range r.Clients {
		fmt.Fprintf(tw, "\t%s checks\t%s", c.Client, c.Client)
	}
	fmt.Fprint(tw, "\treason\n")
	if len(r.Clients) == 0 {
		return tw.Flush()
	}
	for i, s := range r.Clients[0].Scenarios {
		fmt.Fprint(tw, s.Scenario)
		var reasons []string
		for _, c := range r.Clients {
			if i >= len(c.Scenarios) {
				fmt.Fprint(tw, "\t-\t-")
				continue
			}
			cs := c.Scenarios[i]
			fmt.Fprintf(tw, "\t%d passed, %d failed\t%s", cs.ChecksPassed, cs.ChecksFailed, cs.Verdict)
			if cs.Verdict != Passed && cs.Reason != "" {
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
