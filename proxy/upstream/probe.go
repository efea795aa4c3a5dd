package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// The probes: the first request an MCP client sends, without a token.
// A 2026-07-28 server checks a request's shape (the protocol version
// header and _meta) before it authenticates it, and an older server does
// not know server/discover, so the proxy asks the new way first and falls
// back to the older initialize when the answer proves nothing.
const (
	probeDiscover   = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"mcp-proxy","version":"1"}}}}`
	probeInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-proxy","version":"1"}}}`
)

// probe sends the MCP endpoint the first request an MCP client would (a
// POST of server/discover, then of initialize when that proves nothing),
// without a token, and returns the status and the WWW-Authenticate
// challenges of the answer that says the most.
func (c *Discoverer) probe(ctx context.Context, mcpURL string) (int, []oauthex.Challenge, error) {
	status, challenges, err := c.probeOnce(ctx, mcpURL, "server/discover", "2026-07-28", probeDiscover)
	if err != nil || conclusive(status, challenges) {
		return status, challenges, err
	}
	return c.probeOnce(ctx, mcpURL, "initialize", "2025-11-25", probeInitialize)
}

// conclusive reports whether an answer to a probe tells whether the server
// needs authorization: a success, or a challenge.
func conclusive(status int, challenges []oauthex.Challenge) bool {
	return status >= 200 && status < 300 || len(challenges) > 0
}

func (c *Discoverer) probeOnce(ctx context.Context, mcpURL, method, version, body string) (int, []oauthex.Challenge, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", version)
	req.Header.Set("Mcp-Method", method)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		c.endSession(ctx, mcpURL, sid, version)
	}
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("unreadable WWW-Authenticate header: %w", err)
	}
	return resp.StatusCode, challenges, nil
}

// endSession ends the session a probe opened on a server that needs no
// authorization, so that probing leaves nothing behind.
func (c *Discoverer) endSession(ctx context.Context, mcpURL, sid, version string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, mcpURL, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", version)
	if resp, err := c.HTTP.Do(req); err == nil {
		resp.Body.Close()
	}
}
