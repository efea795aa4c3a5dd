package mockmcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

func connect(t *testing.T, e *env, tok string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   resourceURL,
		HTTPClient: e.clientWithToken(tok),
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func TestSDKClientWhoamiAndEcho(t *testing.T) {
	e := newEnv(t)
	tok := e.valid()
	cs := connect(t, e, tok)
	ctx := context.Background()

	checkWhoami(t, cs, tok)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello, upstream"}})
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "hello, upstream" {
		t.Errorf("echo: got %q, want %q", got, "hello, upstream")
	}
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	checkSessionEvents(t, e.events(KindMCP), tok)
}

// checkWhoami calls whoami and checks that its structured output and its
// text say who the verified token tok names.
func checkWhoami(t *testing.T, cs *mcp.ClientSession, tok string) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if res.IsError {
		t.Fatalf("whoami returned a tool error: %s", mustJSON(t, res.Content))
	}
	want := WhoAmI{
		TokenRequired:    true,
		Subject:          "alice",
		Audience:         []string{resourceURL},
		ClientID:         clientID,
		TokenID:          "jti-1",
		Scopes:           []string{"mcp:read", "mcp:write"},
		Issuer:           issuer,
		TokenFingerprint: control.Fingerprint(tok),
		Note:             "the bearer token was verified against the JWKS of " + issuer,
	}
	var structured WhoAmI
	if err := json.Unmarshal([]byte(mustJSON(t, res.StructuredContent)), &structured); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, structured); diff != "" {
		t.Errorf("whoami structured output (-want +got):\n%s", diff)
	}
	if len(res.Content) != 1 {
		t.Fatalf("whoami content: got %d items, want 1", len(res.Content))
	}
	var fromText WhoAmI
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &fromText); err != nil {
		t.Fatalf("whoami text is not JSON: %v", err)
	}
	if diff := cmp.Diff(want, fromText); diff != "" {
		t.Errorf("whoami text content (-want +got):\n%s", diff)
	}
}

// checkSessionEvents checks the recorded MCP requests of one session with
// tok: each names the token by fingerprint and the verified identity, and
// together they show the session's methods, its assigned id and its
// closing DELETE.
func checkSessionEvents(t *testing.T, evs []control.Event, tok string) {
	t.Helper()
	var methods []string
	sawDelete := false
	for _, ev := range evs {
		checkVerifiedEvent(t, ev, tok)
		if m := ev.Detail[DetailMCPMethod]; m != "" {
			methods = append(methods, m)
		}
		if ev.Method == http.MethodDelete && ev.Detail[DetailMCPSessionID] != "" {
			sawDelete = true
		}
	}
	for _, m := range []string{"initialize", "notifications/initialized", "tools/call"} {
		if !contains(methods, m) {
			t.Errorf("recorded MCP methods %v lack %s", methods, m)
		}
	}
	if !sawDelete {
		t.Errorf("closing the session sent no recorded DELETE with Mcp-Session-Id")
	}
	if evs[0].Detail[DetailAssignedSessionID] == "" && !hasAssigned(evs) {
		t.Errorf("no event records the session id the server assigned")
	}
}

// checkVerifiedEvent checks what one recorded request of tok must carry.
func checkVerifiedEvent(t *testing.T, ev control.Event, tok string) {
	t.Helper()
	if ev.Authorization != control.Fingerprint(tok) {
		t.Errorf("event %d: authorization %q, want the token's fingerprint", ev.Seq, ev.Authorization)
	}
	if ev.Detail[DetailSub] != "alice" || ev.Detail[DetailJTI] != "jti-1" || ev.Detail[DetailIss] != issuer {
		t.Errorf("event %d: detail %v lacks the verified sub/jti/iss", ev.Seq, ev.Detail)
	}
	if ev.Host != resourceHost || ev.Path != "/mcp" {
		t.Errorf("event %d: host %q path %q", ev.Seq, ev.Host, ev.Path)
	}
	if ev.Detail[DetailMCPMethod] == "tools/call" && ev.Detail[DetailToolName] == "" {
		t.Errorf("event %d: tools/call without tool_name", ev.Seq)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasAssigned(evs []control.Event) bool {
	for _, ev := range evs {
		if ev.Detail[DetailAssignedSessionID] != "" {
			return true
		}
	}
	return false
}

// wantChallenge is a refused request as a client sees it.
type wantChallenge struct {
	status int
	header string // exact WWW-Authenticate; "" = none
	error  string // JSON body "error"
}

// checkRefused returns why resp does not match want. It is the assertion
// the table tests rely on; TestBrokenAudienceCheckIsCaught proves it fails
// when the server lets a bad token through.
func checkRefused(resp *http.Response, body []byte, want wantChallenge) error {
	var problems []string
	if resp.StatusCode != want.status {
		problems = append(problems, fmt.Sprintf("status %d, want %d", resp.StatusCode, want.status))
	}
	if got := strings.Join(resp.Header.Values("WWW-Authenticate"), " | "); got != want.header {
		problems = append(problems, fmt.Sprintf("WWW-Authenticate\n got: %s\nwant: %s", got, want.header))
	}
	var b struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		problems = append(problems, fmt.Sprintf("body %q is not JSON: %v", body, err))
	} else if b.Error != want.error || b.ErrorDescription == "" {
		problems = append(problems, fmt.Sprintf("body error %q (description %q), want %q with a description", b.Error, b.ErrorDescription, want.error))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

const (
	prmPathURL  = "https://remote-mcp.provider.com/.well-known/oauth-protected-resource/mcp"
	prmRootURL  = "https://remote-mcp.provider.com/.well-known/oauth-protected-resource"
	scopeParam  = `scope="mcp:read mcp:write"`
	missingHdr  = `Bearer resource_metadata="` + prmPathURL + `", ` + scopeParam
	invalidHdrF = `Bearer error="invalid_token", error_description="%s", resource_metadata="` + prmPathURL + `", ` + scopeParam
)

func invalidToken(desc string) wantChallenge {
	return wantChallenge{status: http.StatusUnauthorized, header: fmt.Sprintf(invalidHdrF, desc), error: "invalid_token"}
}

func TestRefusedTokens(t *testing.T) {
	e := newEnv(t)
	rogue := newRSAKey(t, "rogue-key", jose.RS256)
	impostor := newRSAKey(t, "key-1", jose.RS256) // the AS's kid, another key
	ecKey := newECKey(t, "ec-key")

	with := func(change func(map[string]any)) map[string]any {
		c := e.claims()
		change(c)
		return c
	}
	bearer := func(tok string) string { return "Bearer " + tok }

	tests := []struct {
		name    string
		authz   func() string // the Authorization header value
		advance time.Duration // fake time that passes after minting
		url     string        // "" = the MCP endpoint
		extra   []string      // more headers
		want    wantChallenge
	}{
		{
			name:  "missing",
			authz: func() string { return "" },
			want:  wantChallenge{status: 401, header: missingHdr, error: "unauthorized"},
		},
		{
			name:  "basic scheme counts as missing",
			authz: func() string { return "Basic YWxpY2U6c2VjcmV0" },
			want:  wantChallenge{status: 401, header: missingHdr, error: "unauthorized"},
		},
		{
			name: "wrong audience",
			authz: func() string {
				return bearer(mint(t, e.key, with(func(c map[string]any) { c["aud"] = "https://mcp.example.com/mcp" })))
			},
			want: invalidToken("audience [https://mcp.example.com/mcp] does not include this resource https://remote-mcp.provider.com/mcp (RFC 8707, RFC 9068 section 4)"),
		},
		{
			name: "audience is the origin while metadata is path-suffixed",
			authz: func() string {
				return bearer(mint(t, e.key, with(func(c map[string]any) { c["aud"] = "https://remote-mcp.provider.com" })))
			},
			want: invalidToken("audience [https://remote-mcp.provider.com] does not include this resource https://remote-mcp.provider.com/mcp (RFC 8707, RFC 9068 section 4)"),
		},
		{
			name:    "expired beyond the skew",
			authz:   func() string { return bearer(e.valid()) },
			advance: time.Hour + 31*time.Second,
			want:    invalidToken("the token expired at 2026-03-01T13:00:00Z (now 2026-03-01T13:00:31Z, allowed clock skew 30s)"),
		},
		{
			name: "not yet valid",
			authz: func() string {
				return bearer(mint(t, e.key, with(func(c map[string]any) { c["nbf"] = start.Add(time.Minute).Unix() })))
			},
			want: invalidToken("the token is not valid before 2026-03-01T12:01:00Z (now 2026-03-01T12:00:00Z, allowed clock skew 30s)"),
		},
		{
			name: "issued in the future",
			authz: func() string {
				return bearer(mint(t, e.key, with(func(c map[string]any) { c["iat"] = start.Add(time.Minute).Unix() })))
			},
			want: invalidToken("the token was issued in the future, at 2026-03-01T12:01:00Z (now 2026-03-01T12:00:00Z, allowed clock skew 30s)"),
		},
		{
			name:  "signed by an unknown key",
			authz: func() string { return bearer(mint(t, rogue, e.claims())) },
			want:  invalidToken("no key with kid rogue-key in the JWKS of https://auth.provider.com"),
		},
		{
			name:  "known kid, wrong key",
			authz: func() string { return bearer(mint(t, impostor, e.claims())) },
			want:  invalidToken("the signature does not verify with the RS256 key key-1 of https://auth.provider.com"),
		},
		{
			name: "algorithm differs from the key's",
			authz: func() string {
				return bearer(mint(t, &signingKey{kid: "key-1", alg: "PS256", priv: e.key.priv}, e.claims()))
			},
			want: invalidToken("the signature does not verify with the PS256 key key-1 of https://auth.provider.com"),
		},
		{
			name: "wrong issuer",
			authz: func() string {
				return bearer(mint(t, e.key, with(func(c map[string]any) { c["iss"] = "https://idp.example.com" })))
			},
			want: invalidToken("issuer https://idp.example.com is not an authorization server of this resource (trusted: https://auth.provider.com)"),
		},
		{
			name: "alg none",
			authz: func() string {
				return bearer(unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "key-1"}, e.claims()))
			},
			want: invalidToken("alg 'none' is not accepted; this server accepts RS256, ES256, PS256"),
		},
		{
			name: "HS256 with the public key as secret",
			authz: func() string {
				return bearer(unsigned(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "key-1"}, e.claims()) + "c2ln")
			},
			want: invalidToken("alg 'HS256' is not accepted; this server accepts RS256, ES256, PS256"),
		},
		{
			name:  "an ID token is not an access token",
			authz: func() string { return bearer(mintTyp(t, e.key, "JWT", e.claims())) },
			want:  invalidToken("typ 'JWT' is not at+jwt: not a JWT access token (RFC 9068 section 4)"),
		},
		{
			name:  "no client_id",
			authz: func() string { return bearer(mint(t, e.key, with(func(c map[string]any) { delete(c, "client_id") }))) },
			want:  invalidToken("the token has no client_id claim (RFC 9068 section 2.2)"),
		},
		{
			name:  "no jti",
			authz: func() string { return bearer(mint(t, e.key, with(func(c map[string]any) { delete(c, "jti") }))) },
			want:  invalidToken("the token has no jti claim (RFC 9068 section 2.2)"),
		},
		{
			name:  "no exp",
			authz: func() string { return bearer(mint(t, e.key, with(func(c map[string]any) { delete(c, "exp") }))) },
			want:  invalidToken("the token has no exp claim (RFC 9068 section 2.2)"),
		},
		{
			name:  "EC key not in the JWKS",
			authz: func() string { return bearer(mint(t, ecKey, e.claims())) },
			want:  invalidToken("no key with kid ec-key in the JWKS of https://auth.provider.com"),
		},
		{
			name:  "malformed token",
			authz: func() string { return "Bearer not-a-jwt" },
			want:  invalidToken("the token is not a JWT: want three base64url parts separated by dots (RFC 7519), got 1 part(s)"),
		},
		{
			name:  "encrypted token",
			authz: func() string { return "Bearer a.b.c.d.e" },
			want:  invalidToken("the token is an encrypted JWT (JWE); this server accepts signed JWT access tokens (RFC 9068) only"),
		},
		{
			name:  "malformed credentials",
			authz: func() string { return "Bearer two words" },
			want: wantChallenge{status: 400, error: "invalid_request",
				header: `Bearer error="invalid_request", error_description="the Bearer credentials are malformed: want one b64token (RFC 6750 section 2.1)", resource_metadata="` + prmPathURL + `", ` + scopeParam},
		},
		{
			name:  "token in the query",
			authz: func() string { return "" },
			url:   resourceURL + "?access_token=abc",
			want: wantChallenge{status: 400, error: "invalid_request",
				header: `Bearer error="invalid_request", error_description="access tokens in the URI query are not accepted; send Authorization: Bearer (RFC 6750 section 2.1, MCP authorization)", resource_metadata="` + prmPathURL + `", ` + scopeParam},
		},
		{
			name:  "two Authorization headers",
			authz: func() string { return bearer(e.valid()) },
			extra: []string{"Authorization", "Bearer other"},
			want: wantChallenge{status: 400, error: "invalid_request",
				header: `Bearer error="invalid_request", error_description="more than one Authorization header", resource_metadata="` + prmPathURL + `", ` + scopeParam},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authz := tt.authz()
			e.clock.Advance(tt.advance)
			t.Cleanup(func() { e.clock.Advance(-tt.advance) })
			u := tt.url
			if u == "" {
				u = resourceURL
			}
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(initializeBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			for i := 0; i+1 < len(tt.extra); i += 2 {
				req.Header.Add(tt.extra[i], tt.extra[i+1])
			}
			resp, body := e.do(req)
			if err := checkRefused(resp, body, tt.want); err != nil {
				t.Error(err)
			}
			evs := e.srv.Recorder().Events()
			last := evs[len(evs)-1]
			if last.Status != tt.want.status || last.Detail[DetailError] == "" || last.Detail[DetailMCPMethod] != "initialize" {
				t.Errorf("recorded event %+v: want status %d with the error and the MCP method", last, tt.want.status)
			}
			if last.Detail[DetailWWWAuthenticate] != tt.want.header {
				t.Errorf("recorded challenge %q, want %q", last.Detail[DetailWWWAuthenticate], tt.want.header)
			}
		})
	}
}

// TestAcceptedEdges: tokens at the edge of validity are accepted.
func TestAcceptedEdges(t *testing.T) {
	e := newEnv(t)
	ec := newECKey(t, "ec-key")
	ps := newRSAKey(t, "ps-key", "PS256")
	e.as.addKey(ec)
	e.as.addKey(ps)
	tests := []struct {
		name    string
		tok     func() string
		advance time.Duration
	}{
		{"expired within the skew", e.valid, time.Hour + 29*time.Second},
		{"ES256", func() string { return mint(t, ec, e.claims()) }, 0},
		{"PS256", func() string { return mint(t, ps, e.claims()) }, 0},
		{"audience list with this resource", func() string {
			c := e.claims()
			c["aud"] = []string{"https://other.example.com", resourceURL}
			return mint(t, e.key, c)
		}, 0},
		{"typ application/at+jwt", func() string { return mintTyp(t, e.key, "application/at+jwt", e.claims()) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.tok()
			e.clock.Advance(tt.advance)
			t.Cleanup(func() { e.clock.Advance(-tt.advance) })
			resp, body := e.post("Bearer "+tok, initializeBody)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
		})
	}
}

// TestBrokenAudienceCheckIsCaught proves the audience assertion can fail:
// with the audience check effectively removed (the verifier also accepts
// the wrong audience), checkRefused — the assertion TestRefusedTokens uses
// for its "wrong audience" case — reports the token that got through.
func TestBrokenAudienceCheckIsCaught(t *testing.T) {
	e := newEnv(t)
	e.srv.verifier.audiences = append(e.srv.verifier.audiences, "https://mcp.example.com/mcp") // the deliberate break
	c := e.claims()
	c["aud"] = "https://mcp.example.com/mcp"
	resp, body := e.post("Bearer "+mint(t, e.key, c), initializeBody)
	err := checkRefused(resp, body, invalidToken("audience [https://mcp.example.com/mcp] does not include this resource https://remote-mcp.provider.com/mcp (RFC 8707, RFC 9068 section 4)"))
	if err == nil {
		t.Fatal("checkRefused accepted a response from a server without an audience check")
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the broken server should have let the token through, got %d", resp.StatusCode)
	}
	t.Logf("as intended, the assertion caught the broken check: %v", err)
}

func TestEveryMethodNeedsAToken(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
		req, _ := http.NewRequest(m, resourceURL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", "some-session")
		resp, body := e.do(req)
		if err := checkRefused(resp, body, wantChallenge{status: 401, header: missingHdr, error: "unauthorized"}); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	tests := []struct {
		name      string
		prm       PRMLocation
		served    string // "" = none
		resource  string
		challenge string
		audiences map[string]int // aud → status of an initialize
	}{
		{
			name: "path-suffixed", prm: PRMPathSuffixed,
			served: prmPathURL, resource: resourceURL,
			challenge: missingHdr,
			audiences: map[string]int{resourceURL: 200, "https://remote-mcp.provider.com": 401},
		},
		{
			name: "root", prm: PRMRoot,
			served: prmRootURL, resource: "https://remote-mcp.provider.com",
			challenge: `Bearer resource_metadata="` + prmRootURL + `", ` + scopeParam,
			audiences: map[string]int{resourceURL: 200, "https://remote-mcp.provider.com": 200, "https://remote-mcp.provider.com/": 401},
		},
		{
			name: "absent", prm: PRMAbsent,
			challenge: `Bearer ` + scopeParam,
			audiences: map[string]int{resourceURL: 200, "https://remote-mcp.provider.com": 401},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *testAS) { c.PRM = tt.prm })
			for _, u := range []string{prmPathURL, prmRootURL} {
				resp, body := e.get(u)
				if u != tt.served {
					if resp.StatusCode != http.StatusNotFound {
						t.Errorf("GET %s: status %d, want 404", u, resp.StatusCode)
					}
					continue
				}
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("GET %s: status %d, type %q", u, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				var got map[string]any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				want := map[string]any{
					"resource":                 tt.resource,
					"authorization_servers":    []any{issuer},
					"scopes_supported":         []any{"mcp:read", "mcp:write"},
					"bearer_methods_supported": []any{"header"},
					"resource_name":            "Mock MCP server",
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("GET %s (-want +got):\n%s", u, diff)
				}
			}
			if got := e.srv.ResourceMetadataURL(); got != tt.served {
				t.Errorf("ResourceMetadataURL() = %q, want %q", got, tt.served)
			}
			resp, _ := e.post("", initializeBody)
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("challenge\n got: %s\nwant: %s", got, tt.challenge)
			}
			for aud, status := range tt.audiences {
				c := e.claims()
				c["aud"] = aud
				resp, body := e.post("Bearer "+mint(t, e.key, c), initializeBody)
				if resp.StatusCode != status {
					t.Errorf("aud %s: status %d, want %d: %s", aud, resp.StatusCode, status, body)
				}
			}
			for _, ev := range e.events(KindPRM) {
				if ev.Path != "/.well-known/oauth-protected-resource/mcp" && ev.Path != "/.well-known/oauth-protected-resource" {
					t.Errorf("prm event for path %q", ev.Path)
				}
			}
			if n := len(e.events(KindPRM)); n != 2 {
				t.Errorf("recorded %d prm events, want 2", n)
			}
		})
	}
}

func TestEventsHoldFingerprintsNotTokens(t *testing.T) {
	e := newEnv(t)
	good := e.valid()
	c := e.claims()
	c["aud"] = "https://mcp.example.com/mcp"
	bad := mint(t, e.key, c)
	e.post("Bearer "+good, initializeBody)
	e.post("Bearer "+bad, initializeBody)
	e.get(prmPathURL, "Authorization", "Bearer "+good)
	e.post("Basic YWxpY2U6c2VjcmV0", initializeBody)

	resp, body := e.get("https://"+resourceHost+"/.test/events", "Authorization", "Bearer "+controlSecret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	for _, secret := range []string{good, bad, "YWxpY2U6c2VjcmV0", strings.Split(good, ".")[1], strings.Split(good, ".")[2]} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the events JSON contains a secret %.20s...", secret)
		}
	}
	var evs []control.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		t.Fatal(err)
	}
	wantFP := []string{control.Fingerprint(good), control.Fingerprint(bad), control.Fingerprint(good), control.Fingerprint("Basic YWxpY2U6c2VjcmV0")}
	if len(evs) != len(wantFP) {
		t.Fatalf("got %d events, want %d: %s", len(evs), len(wantFP), body)
	}
	for i, ev := range evs {
		if ev.Authorization != wantFP[i] {
			t.Errorf("event %d: authorization %q, want %q", i, ev.Authorization, wantFP[i])
		}
	}
	if evs[1].Detail[DetailError] != "invalid_token" || evs[1].Detail[DetailSub] != "" {
		t.Errorf("refused event detail %v: want the error and no identity", evs[1].Detail)
	}

	// DELETE resets; the control API itself is not recorded.
	req, _ := http.NewRequest(http.MethodDelete, "https://"+resourceHost+"/.test/events", nil)
	req.Header.Set("Authorization", "Bearer "+controlSecret)
	if resp, _ := e.do(req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE events: %d", resp.StatusCode)
	}
	if evs := e.events(""); len(evs) != 0 {
		t.Errorf("after DELETE: %d events", len(evs))
	}
}

func TestControlAPIGuard(t *testing.T) {
	e := newEnv(t)
	if resp, _ := e.get("https://" + resourceHost + "/.test/events"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the secret: %d, want 401", resp.StatusCode)
	}
	if resp, _ := e.get("https://"+resourceHost+"/.test/events", "Authorization", "Bearer wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong secret: %d, want 401", resp.StatusCode)
	}
	off := newEnv(t, func(c *Config, _ *testAS) { c.ControlSecret = "" })
	if resp, _ := off.get("https://"+resourceHost+"/.test/events", "Authorization", "Bearer "); resp.StatusCode != http.StatusNotFound {
		t.Errorf("control API off: %d, want 404", resp.StatusCode)
	}
	if resp, _ := off.get("https://" + resourceHost + "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if n := len(off.srv.Recorder().Events()); n != 0 {
		t.Errorf("healthz and control requests were recorded: %d events", n)
	}
}

func TestHostMustNameTheResource(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, resourceURL, strings.NewReader(initializeBody))
	req.Host = "mcp.example.com"
	req.Header.Set("Authorization", "Bearer "+e.valid())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, body := e.do(req)
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("status %d, want 421: %s", resp.StatusCode, body)
	}
	for _, host := range []string{"remote-mcp.provider.com:443", "REMOTE-MCP.provider.com"} {
		req, _ := http.NewRequest(http.MethodGet, prmPathURL, nil)
		req.Host = host
		if resp, _ := e.do(req); resp.StatusCode != http.StatusOK {
			t.Errorf("Host %s: status %d, want 200", host, resp.StatusCode)
		}
	}
}

func TestNoAuth(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *testAS) { c.NoAuth = true; c.AuthorizationServers = nil })
	cs := connect(t, e, "leaked-token")
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	var got WhoAmI
	if err := json.Unmarshal([]byte(mustJSON(t, res.StructuredContent)), &got); err != nil {
		t.Fatal(err)
	}
	want := WhoAmI{
		Audience: []string{}, Scopes: []string{},
		TokenFingerprint: control.Fingerprint("leaked-token"),
		Note:             "no token was required: this server runs without authorization",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("whoami (-want +got):\n%s", diff)
	}
	for _, u := range []string{prmPathURL, prmRootURL} {
		if resp, _ := e.get(u); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 without auth", u, resp.StatusCode)
		}
	}
	resp, body := e.post("", initializeBody)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("initialize without a token: %d %s", resp.StatusCode, body)
	}
	for _, ev := range e.events(KindMCP) {
		if ev.Authorization != "" && ev.Authorization != control.Fingerprint("leaked-token") {
			t.Errorf("event authorization %q", ev.Authorization)
		}
	}
}

func TestToolScopes(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *testAS) { c.ToolScopes = map[string][]string{"echo": {"mcp:admin"}} })
	tok := e.valid()
	cs := connect(t, e, tok)
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"}); err != nil {
		t.Fatalf("whoami needs no extra scope: %v", err)
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	resp, b := e.post("Bearer "+tok, body, "Mcp-Session-Id", cs.ID(), "MCP-Protocol-Version", "2025-11-25")
	want := wantChallenge{status: http.StatusForbidden, error: "insufficient_scope",
		header: `Bearer error="insufficient_scope", error_description="tool echo needs scope mcp:admin; the token has scope [mcp:read mcp:write]", resource_metadata="` + prmPathURL + `", scope="mcp:read mcp:write mcp:admin"`}
	if err := checkRefused(resp, b, want); err != nil {
		t.Error(err)
	}
	c := e.claims()
	c["scope"] = "mcp:read mcp:admin"
	admin := mint(t, e.key, c)
	cs2 := connect(t, e, admin)
	if _, err := cs2.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Errorf("echo with mcp:admin: %v", err)
	}
}

func TestSessionBoundToUser(t *testing.T) {
	e := newEnv(t)
	cs := connect(t, e, e.valid())
	c := e.claims()
	c["sub"] = "mallory"
	c["jti"] = "jti-2"
	body := `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`
	resp, b := e.post("Bearer "+mint(t, e.key, c), body, "Mcp-Session-Id", cs.ID(), "MCP-Protocol-Version", "2025-11-25")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another user's token on the session: %d %s, want 403", resp.StatusCode, b)
	}
}

func TestLargeBodyPassesThrough(t *testing.T) {
	e := newEnv(t)
	tok := e.valid()
	cs := connect(t, e, tok)
	text := strings.Repeat("a", maxInspectedBody+10)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != text {
		t.Errorf("echo of %d bytes returned %d bytes", len(text), len(got))
	}
	var sawUninspected bool
	for _, ev := range e.srv.Recorder().Events() {
		if ev.Detail[DetailBodyInspected] == "false" {
			sawUninspected = true
		}
	}
	if !sawUninspected {
		t.Error("no event says the large body was not inspected")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no resource", Config{AuthorizationServers: []string{issuer}}, "ResourceURL is required"},
		{"no AS", Config{ResourceURL: resourceURL}, "AuthorizationServers needs at least one issuer URL"},
		{"http resource", Config{ResourceURL: "http://remote-mcp.provider.com/mcp", NoAuth: true}, "plain http is accepted only for a loopback host"},
		{"fragment", Config{ResourceURL: resourceURL + "#x", NoAuth: true}, "a fragment is not allowed"},
		{"query", Config{ResourceURL: resourceURL + "?x=1", NoAuth: true}, "a query is not allowed"},
		{"upper case host", Config{ResourceURL: "https://Remote-MCP.provider.com/mcp", NoAuth: true}, "not canonical"},
		{"bad scope", Config{ResourceURL: resourceURL, NoAuth: true, ScopesSupported: []string{`a"b`}}, "not a scope-token"},
		{"bad PRM", Config{ResourceURL: resourceURL, NoAuth: true, PRM: 7}, "unknown location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{ResourceURL: "http://127.0.0.1:8080/mcp", AuthorizationServers: []string{"http://localhost:9000"}}); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}

// TestTraceparentIsRecorded: the W3C traceparent a request carries is in
// its event, so a scenario can prove which trace reached the server.
func TestTraceparentIsRecorded(t *testing.T) {
	e := newEnv(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if resp, b := e.post("Bearer "+e.valid(), initializeBody, "Traceparent", tp); resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %d %s", resp.StatusCode, b)
	}
	evs := e.srv.Recorder().Events()
	if len(evs) != 1 || evs[0].Detail[DetailTraceparent] != tp {
		t.Errorf("events %+v, want one with traceparent %s", evs, tp)
	}
}
