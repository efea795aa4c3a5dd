package main

import (
	"net/http"
	"strconv"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

// large answers with a JSON-RPC result of exactly n bytes (bench.
// LargeAnswer): as JSON with its length (a tool's result), or as one
// server-sent event of unknown length (a resource streamed as the SDK's
// server answers), written 64 KiB at a time.
func large(w http.ResponseWriter, n int, stream bool) {
	body := bench.LargeAnswer(n, stream)
	if stream {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	for len(body) > 0 {
		k := min(len(body), 64<<10)
		if _, err := w.Write(body[:k]); err != nil {
			return
		}
		body = body[k:]
	}
}
