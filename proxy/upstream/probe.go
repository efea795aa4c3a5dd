package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
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
	probeVersion           = "2026-07-28"
	probeInitialize        = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-proxy","version":"1"}}}`
	probeInitializeVersion = "2025-11-25"
)

// probeDiscover is the server/discover probe at version, with the
// per-request _meta a 2026-07-28 request carries.
func probeDiscover(version string) string {
	b, _ := json.Marshal(version) // a version is a plain string; Marshal quotes it
	return `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":` + string(b) + `,"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"mcp-proxy","version":"1"}}}}`
}

// probe sends the MCP endpoint the first request an MCP client would (a
// POST of server/discover, then of initialize when that proves nothing),
// without a token, and returns the status and the WWW-Authenticate
// challenges of the answer that says the most. A server that refuses the
// first version with -32022 and names the versions it supports is asked
// again as SEP-2575 says: server/discover with the newest of them that
// speaks it, and initialize only if it names none.
func (c *Discoverer) probe(ctx context.Context, mcpURL string) (int, []oauthex.Challenge, error) {
	status, challenges, supported, err := c.probeOnce(ctx, mcpURL, "server/discover", probeVersion, probeDiscover(probeVersion))
	if err != nil || conclusive(status, challenges) {
		return status, challenges, err
	}
	if v := newestStateless(supported); v != "" {
		status, challenges, _, err = c.probeOnce(ctx, mcpURL, "server/discover", v, probeDiscover(v))
		if err != nil || conclusive(status, challenges) || newestStateful(supported) == "" {
			return status, challenges, err
		}
	}
	status, challenges, _, err = c.probeOnce(ctx, mcpURL, "initialize", probeInitializeVersion, probeInitialize)
	return status, challenges, err
}

// newestStateless and newestStateful pick from the versions a server
// names the newest that speaks server/discover (2026-07-28 and later) and
// the newest that starts with initialize; "" when there is none. Versions
// are dates, so they order as strings.
func newestStateless(versions []string) string {
	return newest(versions, func(v string) bool { return v >= probeVersion })
}

func newestStateful(versions []string) string {
	return newest(versions, func(v string) bool { return v < probeVersion })
}

func newest(versions []string, keep func(string) bool) string {
	best := ""
	for _, v := range versions {
		if keep(v) && v > best {
			best = v
		}
	}
	return best
}

// conclusive reports whether an answer to a probe tells whether the server
// needs authorization: a success, or a challenge.
func conclusive(status int, challenges []oauthex.Challenge) bool {
	return status >= 200 && status < 300 || len(challenges) > 0
}

// probeOnce sends one probe and returns the answer's status and
// challenges, and the versions a -32022 (unsupported protocol version)
// answer says the server supports.
func (c *Discoverer) probeOnce(ctx context.Context, mcpURL, method, version, body string) (int, []oauthex.Challenge, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", version)
	req.Header.Set("Mcp-Method", method)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, probeAnswerBytes))
	resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		c.endSession(ctx, mcpURL, sid, version)
	}
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("unreadable WWW-Authenticate header: %w", err)
	}
	return resp.StatusCode, challenges, supportedVersions(resp, answer), nil
}

// probeAnswerBytes is as much of a probe's answer as the proxy reads.
const probeAnswerBytes = 4096

// codeUnsupportedVersion is SEP-2575's JSON-RPC error for a protocol
// version the server does not speak; its data names the ones it does.
const codeUnsupportedVersion = -32022

// supportedVersions reads the versions a JSON -32022 answer names; nil
// for any other answer.
func supportedVersions(resp *http.Response, body []byte) []string {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil
	}
	var msg struct {
		Error *struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Error == nil || msg.Error.Code != codeUnsupportedVersion {
		return nil
	}
	return msg.Error.Data.Supported
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
