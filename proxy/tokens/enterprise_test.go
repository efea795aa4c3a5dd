package tokens

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// enterpriseFake is one fake server with the identity provider's token
// exchange at /idp and the remote authorization server's token endpoint at
// /as; it records each request's form and Authorization header.
type enterpriseFake struct {
	srv       *httptest.Server
	mu        sync.Mutex
	forms     map[string][]map[string][]string
	auth      map[string][]string
	refuseIdP string
	n         int
}

func newEnterpriseFake(t *testing.T) *enterpriseFake {
	f := &enterpriseFake{forms: map[string][]map[string][]string{}, auth: map[string][]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.forms[r.URL.Path] = append(f.forms[r.URL.Path], r.PostForm)
		f.auth[r.URL.Path] = append(f.auth[r.URL.Path], r.Header.Get("Authorization"))
		f.n++
		n, refuse := f.n, f.refuseIdP
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/idp" && refuse != "":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q,"error_description":"user bob is not assigned"}`, refuse)
		case r.URL.Path == "/idp":
			fmt.Fprintf(w, `{"access_token":"jag-%d","issued_token_type":%q,"token_type":"N_A","expires_in":300}`, n, upstream.TokenTypeIDJAG)
		default:
			fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, n)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *enterpriseFake) requests(path string) []map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string][]string(nil), f.forms[path]...)
}

// enterpriseFixture is the Source of an enterprise route whose identity
// provider's exchange and remote authorization server are the fake, with
// bob's ID token kept until t0 + 1h.
func enterpriseFixture(t *testing.T) (*Source, *enterpriseFake, *upstream.Grant, *clock) {
	t.Helper()
	fake := newEnterpriseFake(t)
	srv := &config.MCPServer{Enterprise: &config.Enterprise{TokenEndpoint: fake.srv.URL + "/idp", ClientID: "proxy-at-idp", ClientSecret: "idp-secret"},
		UpstreamOAuth2: &config.UpstreamOAuth2{ClientID: "proxy-at-as", ClientSecret: "as-secret"}}
	route := &config.Route{From: "https://mcp.example.com", To: "https://remote.example.com", MCP: &config.MCP{Server: srv}}
	c := &clock{t: t0}
	back := store.NewMemoryClock(c.now)
	ids := &login.IDTokens{Records: store.Records[login.IDToken]{B: back, NS: login.NSIDTokens}, Now: c.now}
	if err := ids.Keep(context.Background(), "bob", &login.IDToken{Raw: "bobs-id-token", Issuer: "https://idp.example.com", Expiry: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	src := &Source{Route: route, HTTP: fake.srv.Client(), Now: c.now, Credentials: &credentials.Store{Route: route}, IDTokens: ids,
		Records: store.Records[upstream.Token]{B: back, NS: NSUpstream}, Locks: back, Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler)}
	t.Cleanup(src.Settle)
	g := &upstream.Grant{Issuer: "https://as.example.com", TokenURL: fake.srv.URL + "/as", ClientID: "proxy-at-as",
		Resource: "https://remote.example.com/mcp", Method: upstream.MethodPreregistered}
	return src, fake, g, c
}

// TestEnterpriseExchangesThenPresents: the kept ID token goes to the
// identity provider with the token exchange's parameters and the proxy's
// client there; the ID-JAG goes to the remote authorization server with
// the JWT bearer grant and the proxy's client there.
func TestEnterpriseExchangesThenPresents(t *testing.T) {
	src, fake, g, _ := enterpriseFixture(t)
	tok, e := src.Enterprise(context.Background(), g, "k", "bob")
	if e != nil {
		t.Fatal(e)
	}
	if tok.AccessToken != "at-2" || tok.Subject != "bob" {
		t.Errorf("token %+v", tok)
	}
	check := func(path string, want map[string]string, basic string) {
		t.Helper()
		reqs := fake.requests(path)
		if len(reqs) != 1 {
			t.Fatalf("%s got %d requests, want 1", path, len(reqs))
		}
		for k, v := range want {
			if got := strings.Join(reqs[0][k], ","); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
		if a := fake.auth[path][0]; !strings.HasPrefix(a, "Basic ") || !strings.Contains(a, basic) {
			t.Errorf("%s: Authorization %q, want Basic for %s", path, a, basic)
		}
	}
	check("/idp", map[string]string{"grant_type": upstream.GrantTypeTokenExchange, "subject_token": "bobs-id-token",
		"subject_token_type": upstream.TokenTypeIDToken, "requested_token_type": upstream.TokenTypeIDJAG,
		"audience": "https://as.example.com", "resource": "https://remote.example.com/mcp"}, "cHJveHktYXQtaWRw") // proxy-at-idp
	check("/as", map[string]string{"grant_type": upstream.GrantTypeJWTBearer, "assertion": "jag-1", "resource": "https://remote.example.com/mcp"}, "cHJveHktYXQtYXM") // proxy-at-as
}

// TestEnterpriseRefusedExchangeSendsNothingUpstream: the identity
// provider's refusal is the user's error, naming what it said, and the
// remote authorization server hears nothing.
func TestEnterpriseRefusedExchangeSendsNothingUpstream(t *testing.T) {
	src, fake, g, _ := enterpriseFixture(t)
	fake.refuseIdP = "access_denied"
	_, e := src.Enterprise(context.Background(), g, "k", "bob")
	if e == nil || e.Code != apierror.CodeUpstreamAuthorization || !strings.Contains(e.Message, "access_denied: user bob is not assigned") ||
		strings.Contains(e.Message, "bobs-id-token") {
		t.Fatalf("error %v", e)
	}
	if n := len(fake.requests("/as")); n != 0 {
		t.Errorf("the remote authorization server got %d requests after the refusal", n)
	}
}

// TestEnterpriseRefreshIsANewExchange: an expired token is renewed by
// exchanging the kept ID token again; once the ID token has expired the
// token is dropped (the user signs in again) and nothing is sent.
func TestEnterpriseRefreshIsANewExchange(t *testing.T) {
	src, fake, g, c := enterpriseFixture(t)
	tok, e := src.Enterprise(context.Background(), g, "k", "bob")
	if e != nil {
		t.Fatal(e)
	}
	if err := src.Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(61 * time.Minute))
	got, err := src.Token(context.Background(), "k")
	if err != nil || got == nil || got.AccessToken != "at-4" {
		t.Fatalf("Token after expiry = %+v, %v; want the renewal", got, err)
	}
	if n := len(fake.requests("/idp")); n != 2 {
		t.Fatalf("the identity provider got %d exchanges, want 2", n)
	}
	c.set(t0.Add(3 * time.Hour))
	var log syncbuf.Buffer
	src.Log = slog.New(slog.NewTextHandler(&log, nil))
	got, err = src.Token(context.Background(), "k")
	if got != nil {
		t.Fatalf("with the ID token expired, Token = %+v, %v; want none", got, err)
	}
	if n := len(fake.requests("/idp")); n != 2 {
		t.Errorf("an expired ID token was sent (%d exchanges)", n)
	}
	if left, _ := src.Get(context.Background(), "k"); left != nil {
		t.Errorf("the token was kept after the exchange could not be made")
	}
	if l := log.String(); !strings.Contains(l, "the user must sign in again") || strings.Contains(l, "consent") {
		t.Errorf("the refusal's log line %q should send the user to sign in (there is no consent on an enterprise route)", l)
	}
}
