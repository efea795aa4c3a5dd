package docgen

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/mcpconformance"
)

// MCPConformancePage is the docs site's page of the official MCP
// conformance suite's latest run, under the generated content.
const MCPConformancePage = "mcp-conformance.md"

// WriteMCPConformance writes the page of the official suite's latest run
// (make mcp-conformance's results.json) under out/content: the suite's
// version, the commit, each scenario's checks and verdict through the proxy
// beside the baseline's, and the reason of every verdict other than passed.
// A nil report writes a page that says there is no run yet.
func WriteMCPConformance(out string, rep *mcpconformance.Report) error {
	fm := map[string]any{
		"title":       "MCP conformance suite",
		"linkTitle":   "MCP conformance suite",
		"description": "The official MCP conformance suite's client auth scenarios, through mcp-proxy and with a plain MCP client, in the latest run.",
		"weight":      1010,
	}
	return writeJSON(filepath.Join(out, "content", MCPConformancePage), fm, mcpConformanceBody(rep))
}

func mcpConformanceBody(rep *mcpconformance.Report) string {
	var b strings.Builder
	b.WriteString(`Towards a remote MCP server, the proxy is an OAuth client. The official MCP conformance suite
(` + "`@modelcontextprotocol/conformance`" + `, from npm) grades exactly that role: each client scenario starts an MCP
server and an authorization server that behave in one particular way, runs a client against them, and checks what
the client sent. ` + "`make mcp-conformance`" + ` runs each client auth scenario that the suite's requirement list for
the protocol revision scores, once through mcp-proxy (a route whose ` + "`to`" + ` is the scenario's server; the user's
MCP client signs in at the proxy, and the proxy sends the user on to the scenario's authorization server) and once
with the plain MCP Go SDK client, which is not an intermediary, as a baseline.

A scenario passes when none of its checks fails or warns, as the suite counts. A scenario that cannot apply to an
intermediary is listed, with its reason, in ` + "`internal/mcpconformance/not-applicable.yaml`" + `; nothing else is excused.

`)
	if rep == nil {
		b.WriteString("There are no results yet: run `make mcp-conformance`, then `make site`.\n")
		return b.String()
	}
	dirty := ""
	if rep.Dirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "Latest run: suite **%s %s** (Node %s), client auth scenarios of `%s`, at commit `%.7s`%s, %s; the suite ran for %.0f s.\n\n",
		rep.Suite, rep.SuiteVersion, rep.NodeVersion, rep.Requirements, rep.Commit, dirty, rep.Time.Format("2006-01-02 15:04 UTC"), rep.WallSeconds)
	for _, c := range rep.Clients {
		fmt.Fprintf(&b, "- `%s`\n", c.ClosingLine())
	}
	b.WriteString("\n")
	b.WriteString("| scenario |")
	for _, c := range rep.Clients {
		fmt.Fprintf(&b, " %s checks passed / failed | %s |", c.Client, c.Client)
	}
	b.WriteString(" reason |\n|---|")
	for range rep.Clients {
		b.WriteString("---|---|")
	}
	b.WriteString("---|\n")
	if len(rep.Clients) > 0 {
		for i, s := range rep.Clients[0].Scenarios {
			fmt.Fprintf(&b, "| `%s` |", s.Scenario)
			var reasons []string
			for _, c := range rep.Clients {
				if i >= len(c.Scenarios) {
					b.WriteString(" | |")
					continue
				}
				cs := c.Scenarios[i]
				fmt.Fprintf(&b, " %d / %d | %s |", cs.ChecksPassed, cs.ChecksFailed, verdictCell(cs.Verdict))
				if cs.Verdict != mcpconformance.Passed && cs.Reason != "" {
					reasons = append(reasons, tableCell(c.Client+": "+cs.Reason))
				}
			}
			fmt.Fprintf(&b, " %s |\n", strings.Join(reasons, "; "))
		}
	}
	if all := append(append([]string(nil), rep.Failures...), rep.Problems...); len(all) > 0 {
		b.WriteString("\nThe run failed on:\n\n")
		for _, p := range all {
			fmt.Fprintf(&b, "- %s\n", inline(p))
		}
	}
	fmt.Fprintf(&b, "\nTo reproduce: `%s` at that commit (it installs the pinned suite and Node 22 from npm into `build/mcp-conformance`). Each scenario's `checks.json`, and the client's output with the proxy's log, are under `build/mcp-conformance/results`.\n", rep.Command)
	return b.String()
}

func verdictCell(v string) string {
	if v == mcpconformance.Passed {
		return v
	}
	return "**" + v + "**"
}

// tableCell keeps text inside one Markdown table cell.
func tableCell(s string) string {
	return strings.ReplaceAll(inline(s), "|", `\|`)
}

// inline keeps text on one line and out of Markdown's way.
func inline(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("`", "'", "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;").Replace(s)
}
