package mockmcp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// WhoAmI is the structured output of the whoami tool: what the server saw in
// the bearer token of the request that called it. The same JSON is the
// tool's text content.
type WhoAmI struct {
	// TokenRequired is false on a NoAuth server, whose identity fields stay
	// empty.
	TokenRequired bool `json:"token_required" jsonschema:"whether this server requires a bearer token"`
	// Subject is the token's sub.
	Subject string `json:"subject" jsonschema:"the token's sub claim"`
	// Audience is the token's aud, always a list.
	Audience []string `json:"audience" jsonschema:"the token's aud claim as a list"`
	// ClientID is the token's client_id.
	ClientID string `json:"client_id" jsonschema:"the token's client_id claim"`
	// TokenID is the token's jti.
	TokenID string `json:"token_id" jsonschema:"the token's jti claim"`
	// Scopes is the token's scope claim split on spaces.
	Scopes []string `json:"scopes" jsonschema:"the token's scope claim as a list"`
	// Issuer is the token's iss.
	Issuer string `json:"issuer" jsonschema:"the token's iss claim"`
	// TokenFingerprint is control.Fingerprint of the bearer token that came
	// with the call (also on a NoAuth server, where it should be empty).
	TokenFingerprint string `json:"token_fingerprint" jsonschema:"fingerprint of the bearer token, as in the recorded events"`
	// Note explains the answer in words.
	Note string `json:"note,omitempty" jsonschema:"an explanation for people"`
}

// EchoInput is the input of the echo tool.
type EchoInput struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

// SlowInput is the input of the slow tool.
type SlowInput struct {
	// Steps is how many steps to take; 0 means 3.
	Steps int `json:"steps,omitempty" jsonschema:"how many steps to take, each followed by a progress notification (default 3, 1..1000)"`
	// IntervalMS is the wait before each step in milliseconds; nil means
	// 100, and 0 does not wait at all.
	IntervalMS *int `json:"interval_ms,omitempty" jsonschema:"milliseconds to wait before each step (default 100, 0..60000; 0 does not wait)"`
}

// Limits and defaults of the slow tool's arguments.
const (
	slowDefaultSteps    = 3
	slowMaxSteps        = 1000
	slowDefaultInterval = 100
	slowMaxInterval     = 60000
)

// identityKey is the TokenInfo.Extra key under which the verified *Identity
// reaches tool handlers.
const identityKey = "mockmcp.identity"

func (s *Server) newMCPServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "mockmcp", Title: "Mock MCP server", Version: "1.0.0"}, &mcp.ServerOptions{
		Logger: s.log.With("component", "mcp_sdk"),
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "whoami",
		Description: "Returns what the server saw in the bearer token: subject, audience, client id, token id, scopes and issuer.",
	}, s.whoami)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "echo",
		Description: "Returns the text it was given.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in EchoInput) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "slow",
		Description: "Takes a number of steps, waiting interval_ms before each, and sends a progress notification " +
			"after each step when the call carries a progress token (_meta.progressToken), then returns. " +
			"Over Streamable HTTP the answer is a server-sent event stream that stays open meanwhile, " +
			"each notification sent as it happens.",
	}, s.slow)
	return srv
}

func (s *Server) whoami(_ context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, WhoAmI, error) {
	out := WhoAmI{Audience: []string{}, Scopes: []string{}}
	if req.Extra != nil {
		out.TokenFingerprint = control.Fingerprint(bearerToken(req.Extra.Header.Get("Authorization")))
	}
	var id *Identity
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		id, _ = req.Extra.TokenInfo.Extra[identityKey].(*Identity)
	}
	if id == nil {
		// Only requests served in NoAuth mode reach a tool without a
		// verified token.
		out.Note = "no token was required: this server runs without authorization"
		return nil, out, nil
	}
	out.TokenRequired = true
	out.Subject = id.Subject
	out.Audience = append(out.Audience, id.Audience...)
	out.ClientID = id.ClientID
	out.TokenID = id.TokenID
	out.Scopes = append(out.Scopes, id.Scopes...)
	out.Issuer = id.Issuer
	out.TokenFingerprint = id.Fingerprint
	out.Note = "the bearer token was verified against the JWKS of " + id.Issuer
	return nil, out, nil
}

func (s *Server) slow(ctx context.Context, req *mcp.CallToolRequest, in SlowInput) (*mcp.CallToolResult, any, error) {
	steps, interval := in.Steps, slowDefaultInterval
	if steps == 0 {
		steps = slowDefaultSteps
	}
	if in.IntervalMS != nil {
		interval = *in.IntervalMS
	}
	if steps < 0 || steps > slowMaxSteps || interval < 0 || interval > slowMaxInterval {
		return nil, nil, fmt.Errorf("steps must be 1..%d and interval_ms 0..%d; got steps %d, interval_ms %d",
			slowMaxSteps, slowMaxInterval, steps, interval)
	}
	token := req.Params.GetProgressToken()
	s.step(ctx, 0)
	// Real time on purpose, and only here: the tool exists to hold a stream
	// open for a proxy to relay, which the fake clock of Config.Now cannot.
	wait := time.Duration(interval) * time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		if token != nil {
			// ctx relates the notification to this request, so the SDK sends
			// it on this request's stream, flushed at once.
			if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(i),
				Total:         float64(steps),
				Message:       fmt.Sprintf("step %d of %d", i, steps),
			}); err != nil {
				s.log.Warn("progress_not_sent", "step", i, "error", err.Error())
			}
		}
		s.step(ctx, i)
		t.Reset(wait)
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
		Text: fmt.Sprintf("slow: took %d steps of %d ms", steps, interval),
	}}}, nil, nil
}

// step calls the test hook, if any.
func (s *Server) step(ctx context.Context, i int) {
	if h := s.stepHook.Load(); h != nil {
		(*h)(ctx, i)
	}
}

// bearerToken returns the credentials of a Bearer Authorization header, or
// "" for any other value.
func bearerToken(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
