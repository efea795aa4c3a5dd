package mockmcp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// The stack's names, as in the docs.
const (
	resourceURL   = "https://remote-mcp.provider.com/mcp"
	resourceHost  = "remote-mcp.provider.com"
	issuer        = "https://auth.provider.com"
	asHost        = "auth.provider.com"
	controlSecret = "test-control-secret"
	clientID      = "https://mcp.example.com/.well-known/oauth-client/route.json"
)

// start is the fake clock's first reading: fixed, so error descriptions with
// times can be compared exactly.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is Config.Now for tests: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signingKey is one of the in-test AS's keys.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newRSAKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) *signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: alg, priv: k}
}

func newECKey(t *testing.T, kid string) *signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: jose.ES256, priv: k}
}

// testAS is a tiny authorization server: RFC 8414 (or only OpenID Connect)
// metadata and a JWKS, counting how often each is fetched.
type testAS struct {
	issuer string
	// oidcOnly serves metadata only at /.well-known/openid-configuration.
	oidcOnly bool
	// metadataIssuer, when set, is the issuer the metadata claims.
	metadataIssuer string
	// replacement, when set, is served at the AS's name instead of this
	// fake (the interop test puts the real mockas there).
	replacement http.Handler

	mu   sync.Mutex
	keys []*signingKey

	metadataHits atomic.Int64
	jwksHits     atomic.Int64
}

func (a *testAS) addKey(k *signingKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = append(a.keys, k)
}

func (a *testAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		if a.oidcOnly != (r.URL.Path == "/.well-known/openid-configuration") {
			http.NotFound(w, r)
			return
		}
		a.metadataHits.Add(1)
		iss := a.issuer
		if a.metadataIssuer != "" {
			iss = a.metadataIssuer
		}
		control.WriteJSON(w, http.StatusOK, map[string]any{
			"issuer":                           iss,
			"authorization_endpoint":           a.issuer + "/authorize",
			"token_endpoint":                   a.issuer + "/token",
			"jwks_uri":                         a.issuer + "/jwks",
			"response_types_supported":         []string{"code"},
			"code_challenge_methods_supported": []string{"S256"},
		})
	case "/jwks":
		a.jwksHits.Add(1)
		a.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range a.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		a.mu.Unlock()
		control.WriteJSON(w, http.StatusOK, set)
	default:
		http.NotFound(w, r)
	}
}

// env is one run: a CA, the name map, the in-test AS and a mock MCP server,
// both on HTTPS under their documented names.
type env struct {
	t      *testing.T
	ca     *testca.CA
	hosts  *hostmap.Map
	client *http.Client
	clock  *fakeClock
	as     *testAS
	key    *signingKey // the AS's current signing key
	srv    *Server
}

type envOption func(*Config, *testAS)

// newEnv starts the AS and a server configured by cfg (ResourceURL,
// AuthorizationServers, HTTPClient, Now and ControlSecret are filled in when
// left empty).
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, hosts: hostmap.New(), clock: &fakeClock{now: start}}
	e.client = &http.Client{Transport: netguard.NewTransport(e.hosts.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()})}
	t.Cleanup(e.client.CloseIdleConnections)

	e.key = newRSAKey(t, "key-1", jose.RS256)
	e.as = &testAS{issuer: issuer}
	e.as.addKey(e.key)
	cfg := Config{
		ResourceURL:          resourceURL,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      []string{"mcp:read", "mcp:write"},
		HTTPClient:           e.client,
		ControlSecret:        controlSecret,
		Now:                  e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg, e.as)
	}
	if e.as.replacement != nil {
		e.serve(asHost, e.as.replacement)
	} else {
		e.serve(asHost, e.as)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.serve(resourceHost, srv)
	return e
}

// serve starts h on a loopback HTTPS listener (HTTP/1.1) with a
// certificate for name, and maps name:443 to it.
func (e *env) serve(name string, h http.Handler) { e.serveProto(name, h, false) }

// serveProto is serve, offering HTTP/2 when http2 is set. Serving a name
// again moves it to the new listener; idle connections are closed so the
// next request dials it.
func (e *env) serveProto(name string, h http.Handler, http2 bool) {
	e.t.Helper()
	leaf, err := e.ca.Issue(name)
	if err != nil {
		e.t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	ts.EnableHTTP2 = http2
	ts.StartTLS()
	e.client.CloseIdleConnections()
	e.t.Cleanup(ts.Close)
	ap, err := netip.ParseAddrPort(ts.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.hosts.Set(name, 443, ap)
}

// claims are a valid token's claims at the current fake time.
func (e *env) claims() map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"iss":       issuer,
		"sub":       "alice",
		"aud":       []string{resourceURL},
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "jti-1",
		"scope":     "mcp:read mcp:write",
		"client_id": clientID,
	}
}

// mint signs claims with k as an RFC 9068 access token.
func mint(t *testing.T, k *signingKey, claims map[string]any) string {
	t.Helper()
	return mintTyp(t, k, "at+jwt", claims)
}

func mintTyp(t *testing.T, k *signingKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds a JWT with the given header and claims and an empty
// signature, as an attacker would.
func unsigned(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// valid returns a fresh valid token.
func (e *env) valid() string { return mint(e.t, e.key, e.claims()) }

// initializeBody is a JSON-RPC initialize request.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`

// post sends body to the MCP endpoint with the given Authorization header
// value ("" = none) and returns the response with its body read.
func (e *env) post(authz, body string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, resourceURL, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

func (e *env) get(url string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (*http.Response, []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.client.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// bearerTransport adds a bearer token to every request, as a proxy does.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func (e *env) clientWithToken(tok string) *http.Client {
	return &http.Client{Transport: &bearerTransport{base: e.client.Transport, token: tok}}
}

// events reads the recorded events through the control API.
func (e *env) events(kind string) []control.Event {
	e.t.Helper()
	c := &control.Client{BaseURL: "https://" + resourceHost, Secret: controlSecret, HTTP: e.client}
	evs, err := c.Events(context.Background(), kind)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// control sends a control API request with the secret and returns the
// status and body. body "" sends none.
func (e *env) control(method, path, body string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+resourceHost+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+controlSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, b := e.do(req)
	return resp.StatusCode, b
}

// eventually waits, without sleeping, until cond holds; it fails the test
// after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
