package tokens

import (
	"context"
	"crypto"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/credentials"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// dpopAS is a fake token endpoint that binds a token to the key of the
// request's proof (token_type DPoP), or answers bearer tokens when
// bearerOnly; it records each request's proof key thumbprint ("" for no
// proof).
type dpopAS struct {
	srv        *httptest.Server
	mu         sync.Mutex
	keys       []string
	bearerOnly bool
	dpopAlways bool // answers token_type DPoP even without a proof
}

func newDPoPAS(t *testing.T) *dpopAS {
	a := &dpopAS{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		thumb := ""
		if p := r.Header.Get("DPoP"); p != "" {
			tok, err := jwt.ParseSigned(p, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Errorf("an unreadable proof: %v", err)
				return
			}
			tp, _ := tok.Headers[0].JSONWebKey.Thumbprint(crypto.SHA256)
			thumb = base64.RawURLEncoding.EncodeToString(tp)
		}
		a.mu.Lock()
		a.keys = append(a.keys, thumb)
		n, bearer := len(a.keys), a.bearerOnly || thumb == "" && !a.dpopAlways
		a.mu.Unlock()
		typ := "DPoP"
		if bearer {
			typ = "Bearer"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":%q,"refresh_token":"rt-%d","expires_in":3600}`, n, typ, n)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *dpopAS) proofKeys() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.keys...)
}

func dpopFixture(t *testing.T) (*Source, *dpopAS, *clock) {
	t.Helper()
	as := newDPoPAS(t)
	route := &config.Route{From: "https://mcp.example.com", To: "https://remote.example.com",
		MCP: &config.MCP{Server: &config.MCPServer{UpstreamOAuth2: &config.UpstreamOAuth2{ClientID: "c", ClientSecret: "s"}}}}
	c := &clock{t: t0}
	back := store.NewMemoryClock(c.now)
	src := &Source{Route: route, HTTP: as.srv.Client(), Now: c.now, Credentials: &credentials.Store{Route: route},
		Records: store.Records[upstream.Token]{B: back, NS: NSUpstream}, Locks: back, Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler)}
	t.Cleanup(src.Settle)
	return src, as, c
}

// TestDPoPTokenKeepsItsKey: a grant that asks for DPoP sends a proof with
// the token request, the bound token keeps the proof's key, and its
// refresh proves the same key; a grant that does not sends no proof.
func TestDPoPTokenKeepsItsKey(t *testing.T) {
	src, as, c := dpopFixture(t)
	g := &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c", DPoP: true}
	tok, e := src.ClientCredentials(context.Background(), g, "k", "alice")
	if e != nil {
		t.Fatal(e)
	}
	keys := as.proofKeys()
	if !tok.Bound() || keys[0] == "" {
		t.Fatalf("token %+v after proof %q: want a DPoP-bound token", tok, keys[0])
	}
	tok.RefreshToken = "rt-1"
	if err := src.Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(2 * time.Hour))
	next, err := src.Token(context.Background(), "k")
	if err != nil || next == nil || next.AccessToken != "at-2" || !next.Bound() {
		t.Fatalf("after expiry Token = %+v, %v; want the refreshed bound token", next, err)
	}
	if keys = as.proofKeys(); keys[1] != keys[0] || string(next.DPoPKey) != string(tok.DPoPKey) {
		t.Errorf("the refresh proved key %s, the token was bound to %s: a refresh keeps the token's key", keys[1], keys[0])
	}

	plain := &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c"}
	tok, e = src.ClientCredentials(context.Background(), plain, "k2", "alice")
	if e != nil || tok.Bound() || tok.DPoPKey != nil || as.proofKeys()[2] != "" {
		t.Errorf("a grant without DPoP: token %+v, %v, proof %q; want a bearer token and no proof", tok, e, as.proofKeys()[2])
	}
}

// TestDPoPRequiredRefusesABearerToken: with dpop: required, a bearer
// token is refused, with a message that says what to check; with auto, it
// is used as a bearer token.
func TestDPoPRequiredRefusesABearerToken(t *testing.T) {
	src, as, _ := dpopFixture(t)
	as.bearerOnly = true
	g := &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c", DPoP: true, DPoPRequired: true}
	_, e := src.ClientCredentials(context.Background(), g, "k", "alice")
	if e == nil || e.Code != apierror.CodeUpstreamAuthorization || !strings.Contains(e.Message, "requires DPoP-bound tokens (upstream_oauth2.dpop: required)") {
		t.Fatalf("error %v", e)
	}
	g.DPoPRequired = false
	tok, e := src.ClientCredentials(context.Background(), g, "k", "alice")
	if e != nil || tok.Bound() || tok.DPoPKey != nil {
		t.Errorf("auto with a bearer answer: %+v, %v; want a bearer token without a key", tok, e)
	}
}

// TestAcquiredCountsGrantAndProof: each token obtained counts once under
// its grant (authorization_code when the caller names none) and proof.
func TestAcquiredCountsGrantAndProof(t *testing.T) {
	src, as, _ := dpopFixture(t)
	bound, e := src.ClientCredentials(context.Background(), &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c", DPoP: true}, "k1", "alice")
	if e != nil {
		t.Fatal(e)
	}
	plain, e := src.ClientCredentials(context.Background(), &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c"}, "k2", "alice")
	if e != nil {
		t.Fatal(e)
	}
	for _, a := range []struct {
		tok   *upstream.Token
		grant string
	}{{bound, "enterprise"}, {plain, ""}, {plain, ""}} {
		if err := src.Acquired(context.Background(), a.tok, a.grant); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := src.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameTokensAcquired {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["grant"]+"/"+l["proof"]] = m.GetCounter().GetValue()
		}
	}
	if want := map[string]float64{"enterprise/dpop": 1, "authorization_code/bearer": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", metrics.NameTokensAcquired, got, want)
	}
}

// TestDPoPTokenWithoutAProofIsRefused: a token the authorization server
// calls DPoP-bound although the proxy proved no key is refused: the proxy
// could never present it.
func TestDPoPTokenWithoutAProofIsRefused(t *testing.T) {
	src, as, _ := dpopFixture(t)
	as.dpopAlways = true
	_, e := src.ClientCredentials(context.Background(), &upstream.Grant{TokenURL: as.srv.URL, ClientID: "c"}, "k", "alice")
	if e == nil || e.Code != apierror.CodeUpstreamAuthorization || !strings.Contains(e.Message, "issued a DPoP-bound token although the proxy sent no DPoP proof") {
		t.Fatalf("error %v", e)
	}
}
