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
		Commit: "0123456789abcdef", Fixture: "github.com/modelcontextprotocol/go-sdk/conformance/everything-server@v1.8.0",
		Time: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), WallSeconds: 57, Command: "make mcp-conformance",
		Legs: []mcpconformance.Leg{
			{Name: mcpconformance.LegClient, Title: "The proxy as an OAuth client", Description: "client scenarios", Requirements: []string{"requirements/2026-07-28.yaml"}, Seconds: 40,
				Clients: []mcpconformance.ClientResult{
					{Client: "mcp-proxy", Description: "through mcp-proxy", Passed: 1, Failed: 1, NotApplicable: 1, Total: 4, Scenarios: []mcpconformance.ScenarioResult{
						{Scenario: "auth/a", Verdict: mcpconformance.Passed, ChecksPassed: 18, Scored: true},
						{Scenario: "auth/b", Verdict: mcpconformance.Failed, ChecksPassed: 1, ChecksFailed: 6, Reason: "x failure: a | b `c`", Scored: true},
						{Scenario: "auth/c", Verdict: mcpconformance.NotApplicable, ChecksPassed: 11, ChecksFailed: 1, Reason: "a fixed client id", Scored: true},
						{Scenario: "auth/client-credentials-jwt", Verdict: mcpconformance.Passed, ChecksPassed: 7},
					}},
					{Client: "baseline", Description: "baseline", Passed: 3, NotRun: 1, Total: 4, Scenarios: []mcpconformance.ScenarioResult{
						{Scenario: "auth/a", Verdict: mcpconformance.Passed, ChecksPassed: 18},
						{Scenario: "auth/b", Verdict: mcpconformance.Passed, ChecksPassed: 18},
						{Scenario: "auth/c", Verdict: mcpconformance.Passed, ChecksPassed: 12},
						{Scenario: "auth/client-credentials-jwt", Verdict: mcpconformance.NotRun, Reason: "no grant"},
					}},
				}},
			{Name: mcpconformance.LegServer, Title: "The proxy as the MCP server", Description: "server scenarios", Seconds: 17,
				Clients: []mcpconformance.ClientResult{
					{Client: "mcp-proxy", Description: "through mcp-proxy", AsDirect: 1, Total: 1, Scenarios: []mcpconformance.ScenarioResult{
						{Scenario: "2026-07-28/tasks-lifecycle", Verdict: mcpconformance.AsDirect, ChecksPassed: 1, ChecksFailed: 8, Reason: "the same failing checks as direct: t"},
					}},
					{Client: "baseline", Description: "baseline: everything-server", Failed: 1, Total: 1, Scenarios: []mcpconformance.ScenarioResult{
						{Scenario: "2026-07-28/tasks-lifecycle", Verdict: mcpconformance.Failed, ChecksPassed: 1, ChecksFailed: 8, Reason: "failing checks: t"},
					}},
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
		"The server leg's MCP server is `github.com/modelcontextprotocol/go-sdk/conformance/everything-server@v1.8.0`.",
		"- `mcp-conformance client: 1 of 4 scenarios passed, 1 not applicable, 1 failed (through mcp-proxy)`",
		"- `mcp-conformance client: 3 of 4 scenarios passed, 0 not applicable, 1 not run (baseline)`",
		"- `mcp-conformance server: 0 of 1 scenarios passed, 0 not applicable, 1 failed as they do direct (through mcp-proxy)`",
		"## Client: The proxy as an OAuth client",
		"Requirement sets: `requirements/2026-07-28.yaml`.",
		"| scenario | mcp-proxy checks passed / failed | mcp-proxy | baseline checks passed / failed | baseline | reason |",
		"| `auth/a` | 18 / 0 | passed | 18 / 0 | passed |  |",
		"| `auth/b` | 1 / 6 | **failed** | 18 / 0 | passed | mcp-proxy: x failure: a \\| b 'c' |",
		"| `auth/c` | 11 / 1 | **not applicable** | 12 / 0 | passed | mcp-proxy: a fixed client id |",
		"| `auth/client-credentials-jwt` (not scored) | 7 / 0 | passed | — | not run | baseline: no grant |",
		"## Server: The proxy as the MCP server",
		"| `2026-07-28/tasks-lifecycle` (not scored) | 1 / 8 | **failed as direct** | 1 / 8 | **failed** | mcp-proxy: the same failing checks as direct: t; baseline: failing checks: t |",
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
