package mockmcp

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-proxy/mcp-proxy/mockas"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

const interopRedirect = "http://localhost:3000/callback"

// TestInteropSDKOAuthClientWithMockAS runs the whole discovery and
// authorization flow of the official SDK client against this server and the
// project's mock AS (package mockas): 401 challenge → protected resource
// metadata → AS metadata → authorization code with PKCE and resource →
// token → whoami with the token the AS issued.
func TestInteropSDKOAuthClientWithMockAS(t *testing.T) {
	as, err := mockas.New(mockas.Config{
		Issuer:  issuer,
		Clients: []mockas.Client{{ID: "interop-client", RedirectURIs: []string{interopRedirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config, fake *testAS) {
		fake.replacement = as
		// Real time: the browser's cookie jar judges cookie expiry by it.
		c.Now = nil
	})
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient:      &oauthex.ClientCredentials{ClientID: "interop-client"},
		RedirectURL:              interopRedirect,
		AuthorizationCodeFetcher: e.browser(t),
		Client:                   e.client,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     resourceURL,
		HTTPClient:   e.client,
		OAuthHandler: handler,
	}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	var got WhoAmI
	if err := json.Unmarshal([]byte(mustJSON(t, res.StructuredContent)), &got); err != nil {
		t.Fatal(err)
	}
	if got.TokenID == "" || got.TokenFingerprint == "" {
		t.Errorf("whoami lacks the token id or fingerprint: %+v", got)
	}
	got.TokenID, got.TokenFingerprint = "", ""
	want := WhoAmI{
		TokenRequired: true,
		Subject:       "alice",
		Audience:      []string{resourceURL},
		ClientID:      "interop-client",
		Scopes:        []string{"mcp:read", "mcp:write"},
		Issuer:        issuer,
		Note:          "the bearer token was verified against the JWKS of " + issuer,
	}
	// The order of granted scopes is the AS's business.
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("whoami with a mockas token (-want +got):\n%s", diff)
	}
	evs := e.events(KindMCP)
	if len(evs) == 0 || evs[0].Status != http.StatusUnauthorized || evs[0].Authorization != "" {
		t.Errorf("the first MCP request should be the unauthenticated 401, got %+v", evs[0])
	}
	if n := len(e.events(KindPRM)); n == 0 {
		t.Error("the SDK client never fetched the protected resource metadata")
	}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenFlow = regexp.MustCompile(`name="flow" value="([^"]*)"`)
	hiddenCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
)

// browser is a headless user: it follows the authorization URL, signs in as
// alice, approves, and returns what the AS redirected back with.
func (e *env) browser(t *testing.T) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return nil, err
		}
		hc := &http.Client{Transport: e.client.Transport, Jar: jar, CheckRedirect: netguard.NoRedirects}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
		for range 8 {
			resp, err := hc.Do(req)
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
				u, err := req.URL.Parse(loc)
				if err != nil {
					return nil, err
				}
				if strings.HasPrefix(u.String(), interopRedirect) {
					q := u.Query()
					if q.Get("error") != "" {
						return nil, fmt.Errorf("authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
					}
					return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
				}
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
				continue
			}
			page := string(body)
			action, flow, csrf := formAction.FindStringSubmatch(page), hiddenFlow.FindStringSubmatch(page), hiddenCSRF.FindStringSubmatch(page)
			if resp.StatusCode != http.StatusOK || action == nil || flow == nil || csrf == nil {
				return nil, fmt.Errorf("unexpected page from %s: %d %.300s", req.URL, resp.StatusCode, page)
			}
			form := url.Values{"flow": {html.UnescapeString(flow[1])}, "csrf_token": {html.UnescapeString(csrf[1])}}
			if strings.Contains(page, `name="password"`) {
				form.Set("username", "alice")
				form.Set("password", "alice-password")
			} else {
				form.Set("decision", "approve")
			}
			target, err := req.URL.Parse(html.UnescapeString(action[1]))
			if err != nil {
				return nil, err
			}
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return nil, fmt.Errorf("no redirect to %s after 8 steps", interopRedirect)
	}
}

// TestInteropStepUp: a tool that needs more scope gets 403
// error="insufficient_scope"; the SDK client understands the challenge,
// authorizes again with the wider scope at mockas, and the retry succeeds.
func TestInteropStepUp(t *testing.T) {
	as, err := mockas.New(mockas.Config{
		Issuer:  issuer,
		Clients: []mockas.Client{{ID: "interop-client", RedirectURIs: []string{interopRedirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config, fake *testAS) {
		fake.replacement = as
		c.Now = nil
		c.ToolScopes = map[string][]string{"echo": {"mcp:admin"}}
	})
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient:      &oauthex.ClientCredentials{ClientID: "interop-client"},
		RedirectURL:              interopRedirect,
		AuthorizationCodeFetcher: e.browser(t),
		Client:                   e.client,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "0"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     resourceURL,
		HTTPClient:   e.client,
		OAuthHandler: handler,
	}, nil)
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "stepped up"}})
	if err != nil {
		t.Fatalf("echo after step-up: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "stepped up" {
		t.Errorf("echo: %q", got)
	}
	var refused, passed bool
	for _, ev := range e.events(KindMCP) {
		if ev.Detail[DetailToolName] != "echo" {
			continue
		}
		switch {
		case ev.Status == http.StatusForbidden && ev.Detail[DetailError] == "insufficient_scope":
			refused = true
		case ev.Status == http.StatusOK && strings.Contains(" "+ev.Detail[DetailScope]+" ", " mcp:admin "):
			passed = true
		}
	}
	if !refused || !passed {
		t.Errorf("want a 403 insufficient_scope then a 200 with mcp:admin; refused=%v passed=%v", refused, passed)
	}
}
