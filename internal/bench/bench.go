// Package bench is `make bench`: it measures, in one run on this machine,
// what one warm request costs through mcp-proxy next to calling the remote
// MCP server directly and next to a bare Go reverse proxy hop over TLS
// that only injects a bearer token (docs/performance.md, "Measuring it").
//
// The parts run as separate processes, so that each one's CPU time can be
// read from /proc: the upstream (cmd/benchupstream: the MCP Go SDK echo
// server, or a canned JSON answer), the bare hop (cmd/barehop), mcp-proxy
// itself (cmd/mcp-proxy, warm: its user authorized once through the
// in-process mock authorization server and identity provider), and the
// closed-loop load generator (cmd/loadgen). cmd/bench drives them: targets
// alternate within each round, rounds repeat, and the table gives medians.
package bench

// CannedAnswer is what the canned upstream answers to every tools/call:
// a JSON-RPC result of the echo tool's shape, with its length known.
var CannedAnswer = []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a canned answer from the bench upstream, the same bytes for every request"}],"isError":false}}`)

// LoadResult is what one loadgen run prints: the requests answered (and
// checked) in the measured window, its length, and the CPU seconds each
// named process used in it.
type LoadResult struct {
	Requests int64              `json:"requests"`
	Seconds  float64            `json:"seconds"`
	CPU      map[string]float64 `json:"cpu"`
}
