package mockas

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

const (
	asIssuer    = "https://auth.provider.com"
	mcpResource = "https://remote-mcp.provider.com/mcp"
	cimdURL     = "https://client.example.net/oauth/client.json"
	cimdRedir   = "https://client.example.net/callback"
)

// goodCIMD is a valid Client ID Metadata Document for cimdURL.
func goodCIMD() map[string]any {
	return map[string]any{
		"client_id":                  cimdURL,
		"client_name":                "Example MCP Client",
		"redirect_uris":              []string{cimdRedir},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	}
}

// fetchJWKS reads a server's published keys as a relying party would.
func fetchJWKS(t *testing.T, c *http.Client, u string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string][]map[string]any
	var set jose.JSONWebKeySet
	body := json.NewDecoder(resp.Body)
	if err := body.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range raw["keys"] {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS publishes private member %q", private)
			}
		}
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestOAuth2ClientFullFlow drives the whole authorization code flow with
// PKCE, a Client ID Metadata Document and a resource indicator, with
// golang.org/x/oauth2 as the client, the MCP Go SDK reading the metadata,
// and a headless browser submitting the login and consent forms.
func TestOAuth2ClientFullFlow(t *testing.T) {
	f := newFullFlow(t)
	verifier := oauth2.GenerateVerifier()
	p := f.openLogin(t, verifier)
	p = f.signIn(t, p)
	callback := f.approve(t, p)
	tok, claims := f.exchange(t, callback.Get("code"), verifier)
	f.checkTokenEvent(t, tok, claims, callback.Get("code"), verifier)
	f.checkRemembered(t)
	f.checkRefresh(t, tok)
}

// fullFlow is TestOAuth2ClientFullFlow's run: the server, the client's
// document host, the user's browser and the client's OAuth configuration.
type fullFlow struct {
	e    *env
	s    *Server
	docs *cimdHost
	b    *browser
	conf *oauth2.Config
	ctx  context.Context // carries the run's HTTP client for x/oauth2
}

// newFullFlow starts the server with the client's document published, and
// configures the client from the metadata the MCP Go SDK reads.
func newFullFlow(t *testing.T) *fullFlow {
	t.Helper()
	e := newEnv(t)
	docs := e.cimdHost("client.example.net")
	docs.handle("/oauth/client.json", jsonDoc(goodCIMD(), "Cache-Control", "max-age=300"))
	cfg := e.config(asIssuer)
	cfg.TrustedHosts = []string{"client.example.net"}
	cfg.ScopesSupported = []string{"files:read", "files:write"}
	f := &fullFlow{e: e, s: e.newServer(cfg), docs: docs, b: e.browser("auth.provider.com"),
		ctx: context.WithValue(context.Background(), oauth2.HTTPClient, e.client())}

	meta, err := oauthex.GetAuthServerMeta(f.ctx, asIssuer+"/.well-known/oauth-authorization-server", asIssuer, e.client())
	if err != nil || meta == nil {
		t.Fatalf("go-sdk GetAuthServerMeta: %v, %v", meta, err)
	}
	if !meta.ClientIDMetadataDocumentSupported || !meta.AuthorizationResponseIssParameterSupported || !slices.Equal(meta.CodeChallengeMethodsSupported, []string{"S256"}) {
		t.Fatalf("metadata: %+v", meta)
	}
	f.conf = &oauth2.Config{
		ClientID:    cimdURL,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint},
		RedirectURL: cimdRedir,
		Scopes:      []string{"files:read"},
	}
	return f
}

// authURL is the client's authorization request for verifier's challenge.
func (f *fullFlow) authURL(state, verifier string) string {
	return f.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", mcpResource))
}

// openLogin opens the authorization request and checks the login page, its
// session cookie and its form.
func (f *fullFlow) openLogin(t *testing.T, verifier string) *page {
	t.Helper()
	p, err := f.b.get(f.authURL("state-123", verifier))
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, p, "login")
	setCookie := p.header.Get("Set-Cookie")
	for _, want := range []string{"__Host-mockas_session_", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %q", setCookie, want)
		}
	}
	lf, err := onlyForm(p)
	if err != nil {
		t.Fatal(err)
	}
	if lf.method != "POST" || lf.action != asIssuer+"/login" || lf.fields.Get("flow") == "" || lf.fields.Get("csrf_token") == "" ||
		lf.inputs["username"] != "text" || lf.inputs["password"] != "password" || len(lf.buttons) != 1 || lf.buttons[0]["text"] != "Sign in" {
		t.Fatalf("login form: %+v", lf)
	}
	return p
}

// signIn signs alice in, first with a wrong password, and checks the
// consent page she reaches.
func (f *fullFlow) signIn(t *testing.T, p *page) *page {
	t.Helper()
	// A wrong password renders the form again, with an error.
	p, err := f.b.login(p, "alice", "wrong")
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusUnauthorized || elementText(p.body, "error") == "" {
		t.Fatalf("wrong password: status %d, error %q", p.status, elementText(p.body, "error"))
	}
	p, err = f.b.login(p, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, p, "consent")
	for _, want := range []string{"client.example.net", "Example MCP Client", "files:read", cimdRedir, mcpResource} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page does not show %q", want)
		}
	}
	return p
}

// approve checks the consent form, approves, and returns the query of the
// redirect to the client.
func (f *fullFlow) approve(t *testing.T, p *page) url.Values {
	t.Helper()
	cf, err := onlyForm(p)
	if err != nil {
		t.Fatal(err)
	}
	if cf.action != asIssuer+"/consent" || cf.button("approve")["text"] != "Allow" || cf.button("deny")["text"] != "Deny" || cf.button("approve")["name"] != "decision" {
		t.Fatalf("consent form: %+v", cf)
	}
	p, err = f.b.decide(p, "approve")
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusFound {
		t.Fatalf("approve: status %d", p.status)
	}
	cb := p.location()
	q := cb.Query()
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != cimdRedir {
		t.Fatalf("redirected to %s, want %s", got, cimdRedir)
	}
	if q.Get("state") != "state-123" || q.Get("iss") != asIssuer || q.Get("code") == "" {
		t.Fatalf("callback query %v: want state, iss %s and code", q, asIssuer)
	}
	return q
}

// exchange redeems the code and checks the token response and the access
// token's claims.
func (f *fullFlow) exchange(t *testing.T, code, verifier string) (*oauth2.Token, accessClaims) {
	t.Helper()
	tok, err := f.conf.Exchange(f.ctx, code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", mcpResource))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "files:read" || tok.Extra("id_token") != nil {
		t.Fatalf("token response: %+v scope=%v id_token=%v", tok, tok.Extra("scope"), tok.Extra("id_token"))
	}
	claims := checkAccessToken(t, f.e, tok.AccessToken)
	if claims.Subject != "alice" || !slices.Equal([]string(claims.Audience), []string{mcpResource}) || claims.ClientID != cimdURL || claims.Scope != "files:read" {
		t.Fatalf("access token claims: %+v", claims)
	}
	return tok, claims
}

// checkTokenEvent checks that the token event names the token by
// fingerprint, never in clear.
func (f *fullFlow) checkTokenEvent(t *testing.T, tok *oauth2.Token, claims accessClaims, code, verifier string) {
	t.Helper()
	var tokenEv *control.Event
	for _, ev := range f.s.Recorder().Events() {
		if ev.Kind == "token" && ev.Status == http.StatusOK {
			tokenEv = &ev
		}
	}
	if tokenEv == nil {
		t.Fatal("no successful token event")
	}
	if tokenEv.Detail["access_token"] != control.Fingerprint(tok.AccessToken) || tokenEv.Detail["jti"] != claims.ID || tokenEv.Detail["sub"] != "alice" ||
		tokenEv.Detail["refresh_token"] != control.Fingerprint(tok.RefreshToken) || tokenEv.Params["code"] != control.Fingerprint(code) ||
		tokenEv.Params["code_verifier"] != control.Fingerprint(verifier) || tokenEv.Params["resource"] != mcpResource || tokenEv.Host != "auth.provider.com" || tokenEv.Path != "/token" {
		t.Fatalf("token event: %+v", tokenEv)
	}
}

// checkRemembered checks that consent and the document are remembered: a
// second authorization goes straight back to the client, without a second
// fetch.
func (f *fullFlow) checkRemembered(t *testing.T) {
	t.Helper()
	p, err := f.b.get(f.authURL("state-2", oauth2.GenerateVerifier()))
	if err != nil {
		t.Fatal(err)
	}
	if p.status != http.StatusFound || p.location().Query().Get("code") == "" {
		t.Fatalf("second authorization: status %d, body %.200s", p.status, p.body)
	}
	if n := f.docs.hitCount("/oauth/client.json"); n != 1 {
		t.Errorf("document fetched %d times, want 1 (cached for max-age=300)", n)
	}
	if n := f.s.Recorder().Count("cimd_fetch"); n != 1 {
		t.Errorf("%d cimd_fetch events, want 1", n)
	}
}

// checkRefresh checks that a refresh rotates the refresh token and keeps
// the audience.
func (f *fullFlow) checkRefresh(t *testing.T, tok *oauth2.Token) {
	t.Helper()
	f.e.clock.Advance(2 * time.Hour)
	tok2, err := f.conf.TokenSource(f.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	claims2 := checkAccessToken(t, f.e, tok2.AccessToken)
	if !slices.Equal([]string(claims2.Audience), []string{mcpResource}) || !claims2.IssuedAt.Time().Equal(f.e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("refreshed claims: %+v", claims2)
	}
}

// checkPage checks what every login or consent page must have.
func checkPage(t *testing.T, p *page, kind string) {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("%s page: status %d: %.300s", kind, p.status, p.body)
	}
	if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("%s page headers: X-Frame-Options %q, CSP %q", kind, p.header.Get("X-Frame-Options"), p.header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(p.body, "<title>") || strings.Contains(p.body, "<script") || strings.Contains(p.body, "<link") {
		t.Errorf("%s page must have a title and no scripts or external resources", kind)
	}
	want := map[string]string{"login": `name="password"`, "consent": `name="decision"`}[kind]
	if !strings.Contains(p.body, want) {
		t.Fatalf("not a %s page: %.300s", kind, p.body)
	}
}

// checkAccessToken verifies an access token against the published JWKS as
// a resource server would, and returns its claims.
func checkAccessToken(t *testing.T, e *env, raw string) accessClaims {
	t.Helper()
	keys := fetchJWKS(t, e.client(), asIssuer+"/jwks")
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Fatalf("typ %v, want at+jwt", typ)
	}
	ks := keys.Key(tok.Headers[0].KeyID)
	if len(ks) != 1 {
		t.Fatalf("kid %q: %d keys", tok.Headers[0].KeyID, len(ks))
	}
	var c accessClaims
	if err := tok.Claims(ks[0].Key, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: asIssuer, Time: e.clock.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.NotBefore == nil || c.IssuedAt == nil || c.Expiry == nil {
		t.Fatalf("claims lack jti/nbf/iat/exp: %+v", c)
	}
	return c
}

// TestOIDCRelyingParty uses the IdP role (an issuer with a path and a
// confidential client) with coreos/go-oidc as the relying party: discovery,
// ID token verification with nonce and at_hash, UserInfo, key rotation and
// expiry on the fake clock.
func TestOIDCRelyingParty(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) { testOIDCRelyingParty(t, alg) })
	}
}

func testOIDCRelyingParty(t *testing.T, alg jose.SignatureAlgorithm) {
	r := newOIDCRun(t, alg)
	tok, rawID := r.signIn(t)
	r.checkTokens(t, tok, rawID)
	tok2, raw2 := r.checkKeyRotation(t, tok, rawID)
	r.checkExpiry(t, tok2, raw2)
}

// oidcRun is one run of testOIDCRelyingParty: the IdP and go-oidc's view
// of it.
type oidcRun struct {
	e        *env
	s        *Server
	alg      jose.SignatureAlgorithm
	provider *oidc.Provider
	rp       *oidc.IDTokenVerifier
	conf     *oauth2.Config
	ctx      context.Context // go-oidc's client
	octx     context.Context // x/oauth2's client
}

const (
	oidcIssuer   = "https://idp.example.com/tenant1"
	oidcRedirect = "https://mcp.example.com/.auth/callback"
)

func newOIDCRun(t *testing.T, alg jose.SignatureAlgorithm) *oidcRun {
	t.Helper()
	e := newEnv(t)
	cfg := e.config(oidcIssuer)
	cfg.SigningAlgorithm = string(alg)
	cfg.Clients = []Client{{ID: "mcp-proxy", Secret: "proxy-secret", Name: "MCP Proxy", RedirectURIs: []string{oidcRedirect}}}
	r := &oidcRun{e: e, s: e.newServer(cfg), alg: alg, ctx: oidc.ClientContext(context.Background(), e.client())}
	r.octx = context.WithValue(r.ctx, oauth2.HTTPClient, e.client())
	var err error
	if r.provider, err = oidc.NewProvider(r.ctx, oidcIssuer); err != nil {
		t.Fatal(err)
	}
	r.conf = &oauth2.Config{
		ClientID: "mcp-proxy", ClientSecret: "proxy-secret", RedirectURL: oidcRedirect,
		Endpoint: r.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
	r.rp = r.provider.Verifier(&oidc.Config{ClientID: "mcp-proxy", Now: e.clock.Now})
	return r
}

// signIn takes bob through the code flow with PKCE and a nonce and returns
// the tokens and the raw ID token.
func (r *oidcRun) signIn(t *testing.T) (*oauth2.Token, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	cb, err := r.e.browser("idp.example.com").authorizeAll(r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-0S6_WzA2Mj")), "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("iss") != oidcIssuer {
		t.Fatalf("iss %q", cb.Query().Get("iss"))
	}
	tok, err := r.conf.Exchange(r.octx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	return tok, rawID
}

// checkTokens checks the ID token as go-oidc verifies it (claims, nonce,
// at_hash), the access token's audience and UserInfo.
func (r *oidcRun) checkTokens(t *testing.T, tok *oauth2.Token, rawID string) {
	t.Helper()
	idt, err := r.rp.Verify(r.ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc rejected the ID token: %v", err)
	}
	var extra struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := idt.Claims(&extra); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "bob" || idt.Nonce != "n-0S6_WzA2Mj" || extra.Email != "bob@example.com" || extra.Name != "Bob Example" || idt.Issuer != oidcIssuer {
		t.Fatalf("ID token: %+v %+v", idt, extra)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	// The access token of the IdP role names the client as its audience.
	var ac accessClaims
	parsed, _ := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{r.alg})
	_ = parsed.UnsafeClaimsWithoutVerification(&ac)
	if !slices.Equal([]string(ac.Audience), []string{"mcp-proxy"}) {
		t.Fatalf("aud %v, want the client id", ac.Audience)
	}
	ui, err := r.provider.UserInfo(r.octx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "bob" || ui.Email != "bob@example.com" || !ui.EmailVerified {
		t.Fatalf("userinfo: %+v", ui)
	}
}

// checkKeyRotation rotates the key: the new key signs, the old one stays
// published, and the relying party verifies both tokens. It returns the
// refreshed tokens and their ID token.
func (r *oidcRun) checkKeyRotation(t *testing.T, tok *oauth2.Token, rawID string) (*oauth2.Token, string) {
	t.Helper()
	if err := r.s.RotateKey(); err != nil {
		t.Fatal(err)
	}
	tok2, err := r.conf.TokenSource(r.octx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := tok2.Extra("id_token").(string)
	h1, _ := jwt.ParseSigned(rawID, []jose.SignatureAlgorithm{r.alg})
	h2, _ := jwt.ParseSigned(raw2, []jose.SignatureAlgorithm{r.alg})
	if h1.Headers[0].KeyID == h2.Headers[0].KeyID {
		t.Fatal("the rotated key did not sign the new ID token")
	}
	if _, err := r.rp.Verify(r.ctx, raw2); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := r.rp.Verify(r.ctx, rawID); err != nil {
		t.Fatalf("old key no longer verifies: %v", err)
	}
	if n := len(r.s.JWKS().Keys); n != 2 {
		t.Fatalf("%d published keys, want 2", n)
	}
	return tok2, raw2
}

// checkExpiry checks that expiry follows the injected clock.
func (r *oidcRun) checkExpiry(t *testing.T, tok2 *oauth2.Token, raw2 string) {
	t.Helper()
	r.e.clock.Advance(2 * time.Hour)
	if _, err := r.rp.Verify(r.ctx, raw2); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("verify after 2h: %v, want expired", err)
	}
	if _, err := r.provider.UserInfo(r.octx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Fatal("userinfo accepted an expired access token")
	}
}
