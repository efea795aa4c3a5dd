// Package mcpconformance runs the official MCP conformance suite
// (@modelcontextprotocol/conformance, npm) against mcp-proxy's upstream
// leg, where the proxy is the OAuth client the suite grades, and against
// the plain MCP Go SDK client as a baseline, one client auth scenario at a
// time; it judges each scenario from the suite's checks, holds the
// scenarios that cannot apply to an intermediary to their checked-in
// reason, and writes the results the docs site publishes.
package mcpconformance
