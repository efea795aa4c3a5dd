// Package mcpconformance runs the official MCP conformance suite
// (@modelcontextprotocol/conformance, npm) against the three faces of
// mcp-proxy, one leg each, and each beside a baseline without the proxy:
// its upstream OAuth and MCP client (the suite's client mode, one scenario
// at a time, through a route whose to is the scenario's server), its own
// authorization server (the authorization mode, signed in headlessly
// through the real pages), and the MCP server its users' clients reach
// (the server mode against the MCP Go SDK's everything-server, direct and
// through a route; the failure sets must be equal). It judges each
// scenario from the suite's checks, holds the scenarios that cannot apply
// to an intermediary to their checked-in reason, and writes the results the
// docs site publishes.
package mcpconformance
