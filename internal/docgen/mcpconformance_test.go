package docgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance"
)

func TestWriteMCPConformance(t *testing.T) {
	rep := &mcpconformance.Report{
		Suite: "@modelcontextprotocol/conformance", SuiteVersion: "0.2.0-alpha.12", NodeVersion: "v22.23.5",
		SpecVersion: "2026-07-28", Requirements: "requirements/2026-07-28.yaml", Commit: "0123456789abcdef",
		Time: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), WallSeconds: 57, Command: "make mcp-conformance",
		Clients: []mcpconformance.ClientResult{
			{Client: "mcp-proxy", Description: "through mcp-proxy", Passed: 1, Failed: 1, NotApplicable: 1, Total: 3, Scenarios: []mcpconformance.ScenarioResult{
				{Scenario: "auth/a", Verdict: mcpconformance.Passed, ChecksPassed: 18},
				{Scenario: "auth/b", Verdict: mcpconformance.Failed, ChecksPassed: 1, ChecksFailed: 6, Reason: "x failure: a | b `c`"},
				{Scenario: "auth/c", Verdict: mcpconformance.NotApplicable, ChecksPassed: 11, ChecksFailed: 1, Reason: "a fixed client id"},
			}},
			{Client: "baseline", Description: "baseline", Passed: 3, Total: 3, Scenarios: []mcpconformance.ScenarioResult{
				{Scenario: "auth/a", Verdict: mcpconformance.Passed, ChecksPassed: 18},
				{Scenario: "auth/b", Verdict: mcpconformance.Passed, ChecksPassed: 18},
				{Scenario: "auth/c", Verdict: mcpconformance.Passed, ChecksPassed: 12},
			}},
		},
		Problems: []string{"mcp-proxy: auth/b failed: x failure"},
	}
	out := t.TempDir()
	if err := WriteMCPConformance(out, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "content", MCPConformancePage))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		`"title": "MCP conformance suite"`,
		"suite **@modelcontextprotocol/conformance 0.2.0-alpha.12** (Node v22.23.5)",
		"at commit `0123456`",
		"- `mcp-conformance: 1 of 3 scenarios passed, 1 not applicable (through mcp-proxy)`",
		"- `mcp-conformance: 3 of 3 scenarios passed, 0 not applicable (baseline)`",
		"| scenario | mcp-proxy checks passed / failed | mcp-proxy | baseline checks passed / failed | baseline | reason |",
		"| `auth/a` | 18 / 0 | passed | 18 / 0 | passed |  |",
		"| `auth/b` | 1 / 6 | **failed** | 18 / 0 | passed | mcp-proxy: x failure: a \\| b 'c' |",
		"| `auth/c` | 11 / 1 | **not applicable** | 12 / 0 | passed | mcp-proxy: a fixed client id |",
		"- mcp-proxy: auth/b failed: x failure",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}

	if err := WriteMCPConformance(out, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(out, "content", MCPConformancePage))
	if !strings.Contains(string(b), "There are no results yet: run `make mcp-conformance`") {
		t.Errorf("without a run the page says:\n%s", b)
	}
}
