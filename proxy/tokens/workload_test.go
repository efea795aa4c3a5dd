package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// jwtBearerAS is a fake remote token endpoint for the JWT bearer grant: it
// records every request's form and answers with refuse (an OAuth error
// code) when set, else a token.
type jwtBearerAS struct {
	srv    *httptest.Server
	mu     sync.Mutex
	forms  []map[string][]string
	auth   []string
	refuse string
}

func newJWTBearerAS(t *testing.T) *jwtBearerAS {
	a := &jwtBearerAS{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		a.mu.Lock()
		a.forms = append(a.forms, r.PostForm)
		a.auth = append(a.auth, r.Header.Get("Authorization"))
		refuse := a.refuse
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if refuse != "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q,"error_description":"the assertion's aud does not name this server"}`, refuse)
			return
		}
		fmt.Fprint(w, `{"access_token":"wif-at","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *jwtBearerAS) requests() []map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]map[string][]string(nil), a.forms...)
}

// workloadFixture is a Source of a workload identity route whose token
// file is in a temporary directory.
func workloadFixture(t *testing.T, clientID string) (*Source, *jwtBearerAS, string, *clock) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "workload-token")
	srv := &config.MCPServer{UpstreamTokenBinding: string(config.BindingServiceAccount),
		ServiceAccount: &config.ServiceAccount{WorkloadIdentity: &config.WorkloadIdentity{TokenFile: file}}}
	if clientID != "" {
		srv.UpstreamOAuth2 = &config.UpstreamOAuth2{ClientID: clientID}
	}
	route := &config.Route{From: "https://mcp.example.com", To: "https://remote.example.com", MCP: &config.MCP{Server: srv}}
	c := &clock{t: t0}
	as := newJWTBearerAS(t)
	return &Source{Route: route, HTTP: as.srv.Client(), Now: c.now, Credentials: &credentials.Store{Route: route}}, as, file, c
}

var workloadKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// writeWorkloadToken writes a workload JWT that expires at exp into file.
func writeWorkloadToken(t *testing.T, file, sub string, exp time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: workloadKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "https://oidc.cluster.example.com", Subject: sub,
		Audience: jwt.Audience{"https://auth.example.com"}, Expiry: jwt.NewNumericDate(exp)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(raw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return raw
}

func workloadGrant(as *jwtBearerAS, clientID string) *upstream.Grant {
	return &upstream.Grant{Issuer: "https://auth.example.com", TokenURL: as.srv.URL + "/token", ClientID: clientID,
		Resource: "https://remote.example.com/mcp", Method: upstream.MethodWorkload}
}

func TestJWTBearerPresentsTheWorkloadTokenAlone(t *testing.T) {
	src, as, file, _ := workloadFixture(t, "conformance-wif-workload")
	jwtRaw := writeWorkloadToken(t, file, "system:serviceaccount:mcp:proxy", t0.Add(time.Hour))
	tok, e := src.JWTBearer(context.Background(), workloadGrant(as, "conformance-wif-workload"), "k", "bob")
	if e != nil {
		t.Fatalf("JWTBearer: %v", e)
	}
	if tok.AccessToken != "wif-at" || tok.Subject != "bob" || !tok.Expiry.Equal(t0.Add(time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	reqs := as.requests()
	if len(reqs) != 1 {
		t.Fatalf("the authorization server got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	want := map[string]string{"grant_type": upstream.GrantTypeJWTBearer, "assertion": jwtRaw,
		"resource": "https://remote.example.com/mcp", "client_id": "conformance-wif-workload"}
	for k, v := range want {
		if g := strings.Join(got[k], ","); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	for _, k := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if _, ok := got[k]; ok {
			t.Errorf("the request carried %s; a workload presents its JWT alone", k)
		}
	}
	if as.auth[0] != "" {
		t.Errorf("Authorization = %q, want none", as.auth[0])
	}
}

func TestJWTBearerWithoutClientIDSendsNone(t *testing.T) {
	src, as, file, _ := workloadFixture(t, "")
	writeWorkloadToken(t, file, "w", t0.Add(time.Hour))
	if _, e := src.JWTBearer(context.Background(), workloadGrant(as, ""), "k", "bob"); e != nil {
		t.Fatal(e)
	}
	if _, ok := as.requests()[0]["client_id"]; ok {
		t.Errorf("an empty client_id was sent")
	}
}

// A refused workload token is never presented again, and nothing else is
// tried in its place; a new token in the file is presented once.
func TestJWTBearerRefusedIsNotRetried(t *testing.T) {
	src, as, file, _ := workloadFixture(t, "")
	writeWorkloadToken(t, file, "wrong-audience", t0.Add(time.Hour))
	as.refuse = "invalid_grant"
	g := workloadGrant(as, "")
	for i := range 3 {
		_, e := src.JWTBearer(context.Background(), g, "k", "bob")
		if e == nil || e.Code != apierror.CodeUpstreamAuthorization {
			t.Fatalf("attempt %d: error = %v, want %s", i+1, e, apierror.CodeUpstreamAuthorization)
		}
		for _, want := range []string{"invalid_grant", "the assertion's aud does not name this server", file, "will not present this token again"} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("attempt %d: message %q does not name %q", i+1, e.Message, want)
			}
		}
	}
	if n := len(as.requests()); n != 1 {
		t.Fatalf("the authorization server got %d requests after a refusal, want 1: no retry", n)
	}
	as.refuse = ""
	writeWorkloadToken(t, file, "renewed", t0.Add(2*time.Hour))
	if _, e := src.JWTBearer(context.Background(), g, "k", "bob"); e != nil {
		t.Fatalf("with a new token in the file: %v", e)
	}
	reqs := as.requests()
	if len(reqs) != 2 {
		t.Fatalf("the authorization server got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r["grant_type"][0] != upstream.GrantTypeJWTBearer {
			t.Errorf("request %d used grant %q: no other grant may follow a refusal", i+1, r["grant_type"][0])
		}
	}
}

func TestJWTBearerExpiredTokenIsNotSent(t *testing.T) {
	src, as, file, c := workloadFixture(t, "")
	writeWorkloadToken(t, file, "w", t0.Add(time.Minute))
	c.set(t0.Add(time.Minute))
	_, e := src.JWTBearer(context.Background(), workloadGrant(as, ""), "k", "bob")
	if e == nil || !strings.Contains(e.Message, "expired at 2026-12-01T12:01:00Z") || !strings.Contains(e.Message, file) {
		t.Fatalf("error = %v, want the expiry and the file named", e)
	}
	if n := len(as.requests()); n != 0 {
		t.Errorf("an expired workload token was sent (%d requests)", n)
	}
}

func TestJWTBearerFileProblems(t *testing.T) {
	src, as, file, _ := workloadFixture(t, "")
	if _, e := src.JWTBearer(context.Background(), workloadGrant(as, ""), "k", "bob"); e == nil || !strings.Contains(e.Message, "cannot be read") {
		t.Errorf("missing file: error = %v", e)
	}
	if err := os.WriteFile(file, []byte("not a jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, e := src.JWTBearer(context.Background(), workloadGrant(as, ""), "k", "bob"); e == nil || !strings.Contains(e.Message, "does not hold a signed JWT") {
		t.Errorf("not a JWT: error = %v", e)
	}
	if n := len(as.requests()); n != 0 {
		t.Errorf("the authorization server got %d requests", n)
	}
}

// An expired workload route token is renewed with the JWT bearer grant,
// with what the file holds now: the token the kubelet wrote since.
func TestJWTBearerRenewsWithTheFileAsItIsNow(t *testing.T) {
	src, as, file, c := workloadFixture(t, "")
	back := store.NewMemoryClock(c.now)
	src.Records, src.Locks = store.Records[upstream.Token]{B: back, NS: NSUpstream}, back
	src.Metrics, src.Log = metrics.New(), slog.New(slog.DiscardHandler)
	t.Cleanup(src.Settle)
	writeWorkloadToken(t, file, "first", t0.Add(2*time.Hour))
	g := workloadGrant(as, "")
	tok, e := src.JWTBearer(context.Background(), g, key, "bob")
	if e != nil {
		t.Fatal(e)
	}
	if err := src.Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	renewed := writeWorkloadToken(t, file, "renewed", t0.Add(3*time.Hour))
	c.set(t0.Add(time.Hour))
	got, err := src.Token(context.Background(), key)
	if err != nil || got == nil {
		t.Fatalf("Token after expiry = %v, %v; want a renewed token", got, err)
	}
	reqs := as.requests()
	if len(reqs) != 2 || reqs[1]["assertion"][0] != renewed || reqs[1]["grant_type"][0] != upstream.GrantTypeJWTBearer {
		t.Fatalf("the renewal sent %v, want the JWT bearer grant with the file's new token", reqs)
	}
}
