package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

const pkClient = "https://client.test/pk.json"

// clientHost serves client.test: a private_key_jwt document whose keys
// are at jwks_uri.
type clientHost map[string]string

func (h clientHost) RoundTrip(r *http.Request) (*http.Response, error) {
	body, ok := h[r.URL.Host+r.URL.Path]
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

type signer struct {
	key *ecdsa.PrivateKey
	kid string
}

func newSigner(t testing.TB, kid string) signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k, kid}
}

func (s signer) jwks() string {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "ES256", Use: "sig"}}})
	return string(b)
}

func (s signer) sign(t testing.TB, c jwt.Claims) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithHeader("kid", s.kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func claims(now time.Time, jti string) jwt.Claims {
	return jwt.Claims{Issuer: pkClient, Subject: pkClient, Audience: jwt.Audience{"https://mcp.test/.mcp-proxy/token"},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: jti}
}

func pkDoc() string {
	doc, _ := json.Marshal(map[string]any{"client_id": pkClient, "client_name": "pk", "redirect_uris": []string{testRedirect},
		"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.test/jwks.json"})
	return string(doc)
}

func newPKProxy(t *testing.T, s signer) (*Proxy, *time.Time) {
	t.Helper()
	pub, _ := json.Marshal(map[string]any{"client_id": testClient, "client_name": "pub", "redirect_uris": []string{testRedirect}})
	return newTestProxyWith(t, "", "", clientHost{"client.test/pk.json": pkDoc(), "client.test/jwks.json": s.jwks(), "client.test/app.json": string(pub)}, nil)
}

func seedPKCode(t *testing.T, p *Proxy, code string, now time.Time) {
	t.Helper()
	err := p.putCode(code, &authserver.Code{
		Request: authserver.AuthRequest{Route: "mcp.test", ClientID: pkClient, ClientAuth: clientid.AuthPrivateKeyJWT, RedirectURI: testRedirect,
			CodeChallenge: challengeOf(testVerifier), Resource: "https://mcp.test/mcp", Upstream: "https://upstream.test/mcp"},
		Subject: "alice", BindingKey: p.current().routes["mcp.test"].bindingKey("alice", "", "https://upstream.test/mcp"), Expires: now.Add(authserver.CodeTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pkForm(code, assertion string) url.Values {
	f := good()
	f.Set("code", code)
	f.Set("client_id", pkClient)
	if assertion != "" {
		f.Set("client_assertion_type", authserver.AssertionType)
		f.Set("client_assertion", assertion)
	}
	return f
}

func tokenAnswer(t *testing.T, p *Proxy, f url.Values) (int, tokenError, tokenResponse) {
	t.Helper()
	rec := do(p, tokenRequest(f))
	var e tokenError
	var ok tokenResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	_ = json.Unmarshal(rec.Body.Bytes(), &ok)
	if rec.Code != http.StatusOK && (e.RequestID == "" || e.RequestID != rec.Header().Get("X-Request-Id")) {
		t.Errorf("request_id %q, header %q", e.RequestID, rec.Header().Get("X-Request-Id"))
	}
	return rec.Code, e, ok
}

// TestPrivateKeyJWTRefusals: each way a client assertion can be wrong is an
// invalid_client naming it, and none consumes the code.
func TestPrivateKeyJWTRefusals(t *testing.T) {
	s := newSigner(t, "k1")
	p, now := newPKProxy(t, s)
	seedPKCode(t, p, "pk-code", *now)
	other := newSigner(t, "k1")
	tests := []struct {
		name string
		form func() url.Values
		want string
	}{
		{"no assertion", func() url.Values { return pkForm("pk-code", "") },
			"the client's metadata document asks for private_key_jwt: send client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer and a client_assertion signed with the client's key (RFC 7523)"},
		{"wrong assertion type", func() url.Values {
			f := pkForm("pk-code", s.sign(t, claims(*now, "a")))
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		{"not a JWT", func() url.Values { return pkForm("pk-code", "not.a.jwt") }, "the client_assertion is not a JWT signed with one of RS256, PS256, ES256, ES384, EdDSA"},
		{"HS256", func() url.Values {
			sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
			raw, _ := jwt.Signed(sig).Claims(claims(*now, "b")).Serialize()
			return pkForm("pk-code", raw)
		}, "the client_assertion is not a JWT signed with one of"},
		{"bad signature", func() url.Values { return pkForm("pk-code", other.sign(t, claims(*now, "c"))) },
			"the client_assertion's signature does not verify with the client's published keys"},
		{"unknown kid", func() url.Values { return pkForm("pk-code", newSigner(t, "k9").sign(t, claims(*now, "d"))) },
			`the client_assertion names the key id "k9", which the client's published keys lack`},
		{"wrong aud", func() url.Values {
			c := claims(*now, "e")
			c.Audience = jwt.Audience{"https://other.test/token"}
			return pkForm("pk-code", s.sign(t, c))
		}, "the client_assertion's aud must be the proxy's token endpoint https://mcp.test/.mcp-proxy/token or its issuer https://mcp.test"},
		{"wrong iss", func() url.Values {
			c := claims(*now, "f")
			c.Issuer = "https://client.test/other.json"
			return pkForm("pk-code", s.sign(t, c))
		}, "the client_assertion's iss and sub must both be the client id https://client.test/pk.json"},
		{"expired", func() url.Values {
			c := claims(*now, "g")
			c.Expiry = jwt.NewNumericDate(now.Add(-authserver.AssertionLeeway))
			return pkForm("pk-code", s.sign(t, c))
		}, "the client_assertion has expired; sign a new one for each request"},
		{"too long", func() url.Values {
			c := claims(*now, "h")
			c.Expiry = jwt.NewNumericDate(now.Add(time.Hour))
			return pkForm("pk-code", s.sign(t, c))
		}, "the client_assertion's exp is more than 5 minutes ahead"},
		{"no exp", func() url.Values {
			c := claims(*now, "i")
			c.Expiry = nil
			return pkForm("pk-code", s.sign(t, c))
		}, "the client_assertion has no exp"},
		{"no jti", func() url.Values { return pkForm("pk-code", s.sign(t, claims(*now, ""))) }, "the client_assertion has no jti"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, e, _ := tokenAnswer(t, p, tt.form())
			if status != http.StatusUnauthorized || e.Error != "invalid_client" || !strings.HasPrefix(e.Description, tt.want) {
				t.Errorf("got %d %q %q, want 401 invalid_client %q", status, e.Error, e.Description, tt.want)
			}
		})
	}

	// The right assertion gets the token; the same assertion again is a
	// replay, also on the refresh it then makes.
	good := s.sign(t, claims(*now, "once"))
	status, e, tr := tokenAnswer(t, p, pkForm("pk-code", good))
	if status != http.StatusOK {
		t.Fatalf("the good assertion: %d %+v", status, e)
	}
	seedPKCode(t, p, "pk-code-2", *now)
	if status, e, _ := tokenAnswer(t, p, pkForm("pk-code-2", good)); status != 401 || e.Description != "the client_assertion's jti was already used; sign a new assertion for each request" {
		t.Errorf("a replayed assertion: %d %+v", status, e)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {pkClient}}
	if status, e, _ := tokenAnswer(t, p, refresh); status != 401 || !strings.HasPrefix(e.Description, "the client's metadata document asks for private_key_jwt") {
		t.Errorf("a refresh without an assertion: %d %+v", status, e)
	}
	refresh.Set("client_assertion_type", authserver.AssertionType)
	refresh.Set("client_assertion", s.sign(t, claims(*now, "refresh")))
	refresh.Del("client_id") // RFC 7521 §4.2: the assertion names the client
	if status, e, _ := tokenAnswer(t, p, refresh); status != http.StatusOK {
		t.Errorf("a refresh with an assertion: %d %+v", status, e)
	}
}

// TestPublicClientSendsNoAssertion: a client whose document says none is
// refused when it sends an assertion, and works without.
func TestPublicClientSendsNoAssertion(t *testing.T) {
	s := newSigner(t, "k1")
	p, now := newPKProxy(t, s)
	seedCode(t, p, "the-code", *now)
	f := good()
	f.Set("client_assertion_type", authserver.AssertionType)
	f.Set("client_assertion", s.sign(t, claims(*now, "x")))
	if status, e, _ := tokenAnswer(t, p, f); status != 401 || e.Description != "the client's metadata document says token_endpoint_auth_method none: send no client_assertion" {
		t.Errorf("a public client with an assertion: %d %+v", status, e)
	}
	if status, e, _ := tokenAnswer(t, p, good()); status != http.StatusOK {
		t.Errorf("the public client: %d %+v", status, e)
	}
}

// TestReplayAcrossReplicas: two replicas that share a store refuse an
// assertion the other has seen.
func TestReplayAcrossReplicas(t *testing.T) {
	s := newSigner(t, "k1")
	var shared store.Backend
	share := func(b store.Backend) store.Backend {
		if shared == nil {
			shared = b
		}
		return shared
	}
	hosts := clientHost{"client.test/pk.json": pkDoc(), "client.test/jwks.json": s.jwks()}
	p1, now := newTestProxyWith(t, "", "", hosts, share)
	p2, _ := newTestProxyWith(t, "", "", hosts, share)
	seedPKCode(t, p1, "pk-code", *now)
	seedPKCode(t, p1, "pk-code-2", *now)
	a := s.sign(t, claims(*now, "shared-jti"))
	if status, e, _ := tokenAnswer(t, p1, pkForm("pk-code", a)); status != http.StatusOK {
		t.Fatalf("replica 1: %d %+v", status, e)
	}
	if status, e, _ := tokenAnswer(t, p2, pkForm("pk-code-2", a)); status != 401 || !strings.Contains(e.Description, "jti was already used") {
		t.Fatalf("replica 2 took the replayed assertion: %d %+v", status, e)
	}
}

// TestAuthorizeRedirectsOnlyToApprovedClients: until the client and its
// redirect URI are validated every error is the proxy's page; after that
// too, until the signed-in user has approved the client (or the operator
// lists its host): anyone can publish a document naming their own site, and
// the proxy's host must not forward a browser there without the user's act
// (RFC 9700 §4.11.2). Then errors go back to the client (RFC 6749
// §4.1.2.1).
func TestAuthorizeRedirectsOnlyToApprovedClients(t *testing.T) {
	bad, _ := json.Marshal(map[string]any{"client_id": "https://client.test/bad.json", "client_name": "bad", "redirect_uris": []string{"javascript:alert(1)"}})
	pub, _ := json.Marshal(map[string]any{"client_id": testClient, "client_name": "pub", "redirect_uris": []string{testRedirect}})
	docs := clientHost{"client.test/bad.json": string(bad), "client.test/app.json": string(pub)}
	p, now := newTestProxyWith(t, "", "", docs, nil)
	authorize := func(p *Proxy, client, redirect string, cookies ...*http.Cookie) (*http.Response, string) {
		q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"token"}, "state": {"s"}}
		r := httptest.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/authorize?"+q.Encode(), nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		resp := do(p, r).Result()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	onPage := func(what string, resp *http.Response, body, want string) {
		t.Helper()
		if resp.StatusCode/100 != 4 || resp.Header.Get("Location") != "" || !strings.Contains(body, want) {
			t.Errorf("%s: %d Location %q, body without %q", what, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	for _, tc := range []struct{ client, redirect, want string }{
		{"https://client.test/bad.json", "javascript:alert(1)", "redirect_uris[0] uses the scheme"},
		{testClient, "https://evil.test/cb", "is not one of the redirect_uris"},
		{"https://client.test/missing.json", testRedirect, "not 200"},
		{testClient, testRedirect, "unsupported_response_type"}, // validated, but nobody approved it
	} {
		resp, body := authorize(p, tc.client, tc.redirect)
		onPage(tc.client+" → "+tc.redirect, resp, body, tc.want)
	}
	// alice is signed in but has not approved the client: still the page.
	if err := p.putSession("sid", &authserverSession); err != nil {
		t.Fatal(err)
	}
	signedIn := &http.Cookie{Name: login.SessionCookie, Value: "sid"}
	resp, body := authorize(p, testClient, testRedirect, signedIn)
	onPage("signed in, not approved", resp, body, "unsupported_response_type")
	redirected := func(what string, resp *http.Response) {
		t.Helper()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, testRedirect+"?") || !strings.Contains(loc, "error=unsupported_response_type") {
			t.Errorf("%s: %d Location %q", what, resp.StatusCode, loc)
		}
	}
	if err := p.putConsent("mcp.test", "alice", testClient, *now); err != nil {
		t.Fatal(err)
	}
	resp, _ = authorize(p, testClient, testRedirect, signedIn)
	redirected("approved", resp)
	listed, _ := newTestProxyWith(t, "allowed_client_id_domains: [client.test]", "", docs, nil)
	resp, _ = authorize(listed, testClient, testRedirect)
	redirected("a host the operator lists", resp)
}

// TestPrivateKeyJWTInlineKeys: a document may carry its keys as jwks.
func TestPrivateKeyJWTInlineKeys(t *testing.T) {
	s := newSigner(t, "k1")
	var jwks json.RawMessage = []byte(s.jwks())
	doc, _ := json.Marshal(map[string]any{"client_id": pkClient, "client_name": "pk", "redirect_uris": []string{testRedirect},
		"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks})
	p, now := newTestProxyWith(t, "", "", clientHost{"client.test/pk.json": string(doc)}, nil)
	seedPKCode(t, p, "pk-code", *now)
	seedPKCode(t, p, "pk-code-2", *now)
	if status, e, _ := tokenAnswer(t, p, pkForm("pk-code", newSigner(t, "k1").sign(t, claims(*now, "a")))); status != 401 || !strings.Contains(e.Description, "does not verify") {
		t.Errorf("another key: %d %+v", status, e)
	}
	if status, e, _ := tokenAnswer(t, p, pkForm("pk-code-2", s.sign(t, claims(*now, "b")))); status != http.StatusOK {
		t.Errorf("the document's key: %d %+v", status, e)
	}
}
