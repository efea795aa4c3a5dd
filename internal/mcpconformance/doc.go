// Package mcpconformance runs the official MCP conformance suite's client
// auth scenarios (@modelcontextprotocol/conformance, npm), one at a time,
// through mcp-proxy's upstream leg, where the proxy is the OAuth client the
// suite grades, and through the plain MCP Go SDK client as a baseline. It
// judges each scenario from the suite's checks, holds the scenarios that
// cannot apply to an intermediary to their checked-in reason, and writes
// the results the docs site publishes.
package mcpconformance
