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
// version, the commit, and for each of its three legs each scenario's
// checks and verdict through the proxy beside the baseline's, and the
// reason of every verdict other than passed. A nil report writes a page
// that says there is no run yet.
func WriteMCPConformance(out string, rep *mcpconformance.Report) error {
	fm := map[string]any{
		"title":       "MCP conformance suite",
		"linkTitle":   "MCP conformance suite",
		"description": "The official MCP conformance suite against the proxy's three faces (OAuth client, authorization server, MCP server), each beside a baseline without the proxy, in the latest run.",
		"weight":      1010,
	}
	return writeJSON(filepath.Join(out, "content", MCPConformancePage), fm, mcpConformanceBody(rep))
}

func mcpConformanceBody(rep *mcpconformance.Report) string {
	var b strings.Builder
	b.WriteString(`The official MCP conformance suite (` + "`@modelcontextprotocol/conformance`" + `, from npm) judges the proxy
against someone else's reading of the specification. It has one mode for each face of the proxy, and
` + "`make mcp-conformance`" + ` runs all three, each through mcp-proxy and beside a baseline without it:

- **client**: towards a remote MCP server the proxy is an OAuth and MCP client. Each client scenario starts an MCP
  server (and an authorization server) that behave in one particular way and checks what its client sent; the
  route's ` + "`to`" + ` is the scenario's server, the user's MCP client signs in at the proxy, and the proxy is the client
  graded. The baseline is the MCP Go SDK's clients, which are not intermediaries.
- **authorization**: the proxy's own authorization server, as MCP clients reach it (a Client ID Metadata Document
  client, and a client that registered itself), with and without ` + "`resource`" + `; a headless browser signs in through
  the real pages. The baseline is the stack's remote authorization server, a plain one.
- **server**: the proxy as the MCP server its users' clients reach, in front of the MCP Go SDK's conformance
  server; the baseline is that server called directly. Through the proxy every scenario must fail exactly the
  checks it fails directly: the proxy must change nothing.

A scenario passes when none of its checks fails or warns, as the suite counts (in the server leg, when its
failing checks are those of the direct run). A scenario that cannot apply to an intermediary is listed, with its
reason, in ` + "`internal/mcpconformance/not-applicable.yaml`" + `; nothing else is excused, and a missing prerequisite fails
the run.

`)
	if rep == nil {
		b.WriteString("There are no results yet: run `make mcp-conformance`, then `make site`.\n")
		return b.String()
	}
	dirty := ""
	if rep.Dirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "Latest run: suite **%s %s** (Node %s), at commit `%.7s`%s, %s; the run took %.0f s.",
		rep.Suite, rep.SuiteVersion, rep.NodeVersion, rep.Commit, dirty, rep.Time.Format("2006-01-02 15:04 UTC"), rep.WallSeconds)
	if rep.Fixture != "" {
		fmt.Fprintf(&b, " The server leg's MCP server is `%s`.", rep.Fixture)
	}
	b.WriteString("\n\n")
	for _, l := range rep.Legs {
		for _, c := range l.Clients {
			fmt.Fprintf(&b, "- `%s`\n", c.ClosingLine(l.Name))
		}
	}
	for _, l := range rep.Legs {
		fmt.Fprintf(&b, "\n## %s: %s\n\n%s\n\n", legHeading(l.Name), inline(l.Title), inline(l.Description))
		if len(l.Requirements) > 0 {
			fmt.Fprintf(&b, "Requirement sets: %s. ", "`"+strings.Join(l.Requirements, "`, `")+"`")
		}
		fmt.Fprintf(&b, "The leg took %.0f s.\n\n", l.Seconds)
		writeLegTable(&b, l)
	}
	if all := append(append([]string(nil), rep.Failures...), rep.Problems...); len(all) > 0 {
		b.WriteString("\n## The run failed on\n\n")
		for _, p := range all {
			fmt.Fprintf(&b, "- %s\n", inline(p))
		}
	}
	fmt.Fprintf(&b, "\nTo reproduce: `%s` at that commit (it installs the pinned suite and Node 22 from npm into `build/mcp-conformance`, and builds the MCP Go SDK's conformance client and server at the version `go.mod` pins). Each scenario's `checks.json` and output are under `build/mcp-conformance/results`, by leg.\n", rep.Command)
	return b.String()
}

// legHeading is a leg's section heading.
func legHeading(name string) string {
	switch name {
	case mcpconformance.LegClient:
		return "Client"
	case mcpconformance.LegAuthorization:
		return "Authorization"
	case mcpconformance.LegServer:
		return "Server"
	}
	return name
}

// writeLegTable writes one leg's scenarios: checks and verdict through the
// proxy and with the baseline, side by side, and the reasons.
func writeLegTable(b *strings.Builder, l mcpconformance.Leg) {
	b.WriteString("| scenario |")
	for _, c := range l.Clients {
		fmt.Fprintf(b, " %s checks passed / failed | %s |", c.Client, c.Client)
	}
	b.WriteString(" reason |\n|---|")
	for range l.Clients {
		b.WriteString("---|---|")
	}
	b.WriteString("---|\n")
	if len(l.Clients) == 0 {
		return
	}
	for i, s := range l.Clients[0].Scenarios {
		name := "`" + s.Scenario + "`"
		if !s.Scored {
			name += " (not scored)"
		}
		fmt.Fprintf(b, "| %s |", name)
		var reasons []string
		for _, c := range l.Clients {
			if i >= len(c.Scenarios) {
				b.WriteString(" | |")
				continue
			}
			cs := c.Scenarios[i]
			if cs.Verdict == mcpconformance.NotRun {
				fmt.Fprintf(b, " — | %s |", cs.Verdict)
			} else {
				fmt.Fprintf(b, " %d / %d | %s |", cs.ChecksPassed, cs.ChecksFailed, verdictCell(cs.Verdict))
			}
			if cs.Reason != "" {
				reasons = append(reasons, tableCell(c.Client+": "+cs.Reason))
			}
		}
		fmt.Fprintf(b, " %s |\n", strings.Join(reasons, "; "))
	}
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
