package features

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

func init() { moreSteps = append(moreSteps, dpopSteps) }

// The error code of RFC 9449 §8 and §9, as both doubles record it.
const useDPoPNonce = "use_dpop_nonce"

func dpopSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^the remote authorization server binds tokens to DPoP keys$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.ASHost, "/.test/settings", map[string]any{"dpop": true})
	})
	// A nonce is part of a DPoP proof: the nonce steps switch DPoP on too.
	sc.Step(`^the remote authorization server requires a DPoP nonce$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.ASHost, "/.test/settings", map[string]any{"dpop": true, "dpop_nonce": true})
	})
	sc.Step(`^the remote MCP server requires DPoP-bound tokens$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.UpstreamHost, "/.test/settings", map[string]any{"dpop": true})
	})
	sc.Step(`^the remote MCP server requires a DPoP nonce$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.UpstreamHost, "/.test/settings", map[string]any{"dpop": true, "dpop_nonce": true})
	})
	sc.Step(`^every token request the remote authorization server received carried a DPoP proof$`, w.everyTokenRequestCarriedProof)
	sc.Step(`^every request the remote MCP server received presented a DPoP-bound token with a fresh proof$`, w.everyMCPRequestDPoPBound)
	sc.Step(`^the remote (authorization|MCP) server asked for a DPoP nonce and the proxy's next proof carried it$`, w.nonceCarried)
	sc.Step(`^replaying the last request the remote MCP server accepted is refused with "([^"]+)"$`, w.replayRefused)
	sc.Step(`^the upstream token presented without its key is refused with "([^"]+)"$`, w.tokenWithoutKeyRefused)
}

// provedPossession reports whether an event's request carried a proof that
// verified: accepted, or refused only for want of the current nonce, which
// a double checks last.
func provedPossession(e control.Event) bool {
	return e.Detail["dpop_proof"] == "valid" || (e.Detail["error"] == useDPoPNonce && e.Detail["dpop_jkt"] != "")
}

// everyTokenRequestCarriedProof checks that the remote authorization server
// received at least one token request and that each carried a DPoP proof
// it verified.
func (w *world) everyTokenRequestCarriedProof(ctx context.Context) error {
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%s received no token request", stack.ASHost)
	}
	for i, e := range evs {
		if !provedPossession(e) {
			return fmt.Errorf("token request %d of %d (%s) carried no valid DPoP proof: dpop_proof %q, error %q: %s",
				i+1, len(evs), e.Params["grant_type"], e.Detail["dpop_proof"], e.Detail["error"], e.Detail["error_description"])
		}
	}
	return nil
}

// everyMCPRequestDPoPBound checks every request that reached the remote MCP
// server with credentials: the DPoP scheme, a token bound to the key of a
// proof that verified, and a jti no other proof used. Requests without
// credentials (discovery) and those a fault rule answered do not count; at
// least one request must have been accepted. Run it before a replay step:
// a replay is recorded too.
func (w *world) everyMCPRequestDPoPBound(ctx context.Context) error {
	evs, err := w.events(ctx, stack.UpstreamHost, mockmcp.KindMCP)
	if err != nil {
		return err
	}
	jtis := map[string]int{}
	accepted := 0
	for i, e := range evs {
		if e.Authorization == "" || e.Detail[mockmcp.DetailInjectedFault] != "" {
			continue
		}
		d := e.Detail
		what := fmt.Sprintf("request %d (%s %s)", i+1, e.Method, d[mockmcp.DetailMCPMethod])
		switch {
		case d[mockmcp.DetailAuthScheme] != "DPoP":
			return fmt.Errorf("%s used the scheme %q, not DPoP: %s %s", what, d[mockmcp.DetailAuthScheme], d[mockmcp.DetailError], d[mockmcp.DetailErrorDescription])
		case !provedPossession(e):
			return fmt.Errorf("%s carried no valid proof: %s %s", what, d[mockmcp.DetailError], d[mockmcp.DetailErrorDescription])
		case d[mockmcp.DetailTokenJKT] == "" || d[mockmcp.DetailDPoPJKT] != d[mockmcp.DetailTokenJKT]:
			return fmt.Errorf("%s: the proof's key %q is not the token's cnf.jkt %q", what, d[mockmcp.DetailDPoPJKT], d[mockmcp.DetailTokenJKT])
		}
		if j, seen := jtis[d[mockmcp.DetailDPoPJTI]]; seen {
			return fmt.Errorf("%s reused the proof jti of request %d", what, j)
		}
		jtis[d[mockmcp.DetailDPoPJTI]] = i + 1
		if d[mockmcp.DetailDPoPProof] == "valid" && d[mockmcp.DetailError] == "" {
			accepted++
		}
	}
	if accepted == 0 {
		return fmt.Errorf("%s accepted no request with a DPoP-bound token (%d requests recorded)", stack.UpstreamHost, len(evs))
	}
	return nil
}

// nonceCarried checks that a double refused a proof with use_dpop_nonce and
// that the next proof it received after that carried the nonce and
// verified.
func (w *world) nonceCarried(ctx context.Context, which string) error {
	host, kind := stack.ASHost, "token"
	if which == "MCP" {
		host, kind = stack.UpstreamHost, mockmcp.KindMCP
	}
	evs, err := w.events(ctx, host, kind)
	if err != nil {
		return err
	}
	asked := -1
	for i, e := range evs {
		if asked < 0 {
			if e.Detail["error"] == useDPoPNonce {
				asked = i
			}
			continue
		}
		if e.Detail["dpop_jkt"] == "" || e.Detail["error"] == useDPoPNonce {
			continue // no proof, or a request sent before the answer arrived
		}
		if e.Detail["dpop_nonce"] != "sent" || e.Detail["dpop_proof"] != "valid" {
			return fmt.Errorf("after the nonce was asked for (request %d), request %d carried a proof without it (dpop_nonce %q): %s %s",
				asked+1, i+1, e.Detail["dpop_nonce"], e.Detail["error"], e.Detail["error_description"])
		}
		return nil
	}
	if asked < 0 {
		return fmt.Errorf("%s never answered %s (%d %s requests recorded)", host, useDPoPNonce, len(evs), kind)
	}
	return fmt.Errorf("%s asked for a nonce (request %d), and no proof came after", host, asked+1)
}

// lastDPoP reads the remote MCP server's last request accepted with a
// DPoP-bound token.
func (w *world) lastDPoP(ctx context.Context) (*mockmcp.LastDPoP, error) {
	c, err := w.controlClient(stack.UpstreamHost)
	if err != nil {
		return nil, err
	}
	var last mockmcp.LastDPoP
	if err := c.Do(ctx, http.MethodGet, c.BaseURL+"/.test/last-dpop", nil, &last); err != nil {
		return nil, err
	}
	return &last, nil
}

// replayRefused sends the remote MCP server the credentials of the last
// request it accepted again (same method, URL, Authorization and DPoP
// headers), straight through the stack's transport, and expects 401 with
// code in a DPoP challenge.
func (w *world) replayRefused(ctx context.Context, code string) error {
	last, err := w.lastDPoP(ctx)
	if err != nil {
		return err
	}
	return w.expectDPoPRefusal(ctx, last.Method, last.URL, last.Authorization, last.DPoP, code)
}

// tokenWithoutKeyRefused presents the token of the last accepted request as
// a bearer token, without a proof, and expects 401 with code.
func (w *world) tokenWithoutKeyRefused(ctx context.Context, code string) error {
	last, err := w.lastDPoP(ctx)
	if err != nil {
		return err
	}
	scheme, tok, ok := strings.Cut(last.Authorization, " ")
	if !ok || !strings.EqualFold(scheme, "DPoP") {
		return fmt.Errorf("the last accepted request's Authorization scheme is %q, not DPoP", scheme)
	}
	return w.expectDPoPRefusal(ctx, last.Method, last.URL, "Bearer "+tok, "", code)
}

var challengeError = regexp.MustCompile(`\berror="([^"]*)"`)

// expectDPoPRefusal sends one request to the remote MCP server and expects
// 401 with a DPoP challenge naming code.
func (w *world) expectDPoPRefusal(ctx context.Context, method, url, authz, proof, code string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"jsonrpc":"2.0","id":"replay","method":"ping"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := w.st.Transport().RoundTrip(req)
	if err != nil {
		return err
	}
	// An accepted GET would open an event stream: read nothing of it.
	defer resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%s %s answered %d (WWW-Authenticate %q), want 401 %s", method, url, resp.StatusCode, challenge, code)
	}
	m := challengeError.FindStringSubmatch(challenge)
	switch {
	case !strings.HasPrefix(challenge, "DPoP "):
		return fmt.Errorf("the challenge %q is not of the DPoP scheme", challenge)
	case m == nil:
		return errors.New("the challenge " + challenge + " names no error")
	case m[1] != code:
		return fmt.Errorf("the challenge names the error %q, want %q: %s", m[1], code, challenge)
	}
	return nil
}
