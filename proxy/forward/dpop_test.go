package forward

import (
	"context"
	"crypto"
	"crypto/sha256"
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
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// dpopServer is a remote MCP server that wants DPoP-bound tokens: it
// checks each request's scheme and proof (key, ath, htm, htu) and, when
// nonce is set, asks for its nonce; with rotate it hands out a new one on
// every answer, so no proof can carry the current one.
type dpopServer struct {
	mu     sync.Mutex
	jkt    string
	nonce  string
	rotate bool
	jtis   []string
	errs   []string
}

func (s *dpopServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(format string, args ...any) {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
		w.WriteHeader(http.StatusUnauthorized)
	}
	scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "DPoP" {
		fail("scheme %q", scheme)
		return
	}
	tok, err := jwt.ParseSigned(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256})
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		ATH   string `json:"ath"`
		Nonce string `json:"nonce"`
	}
	if err == nil {
		err = tok.Claims(tok.Headers[0].JSONWebKey.Key, &c)
	}
	if err != nil {
		fail("proof: %v", err)
		return
	}
	tp, _ := tok.Headers[0].JSONWebKey.Thumbprint(crypto.SHA256)
	sum := sha256.Sum256([]byte(at))
	switch {
	case base64.RawURLEncoding.EncodeToString(tp) != s.jkt:
		fail("the proof's key is not the token's")
		return
	case c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || c.HTM != r.Method || c.HTU != "https://"+r.Host+r.URL.Path:
		fail("claims %+v", c)
		return
	}
	s.jtis = append(s.jtis, c.JTI)
	if s.nonce != "" {
		if s.rotate {
			s.nonce += "+" // the nonce a proof needs is always one it has not seen
		}
		w.Header().Set("DPoP-Nonce", s.nonce)
		if c.Nonce != s.nonce {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="a nonce is needed"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
}

// boundFixture forwards to a dpopServer with a DPoP-bound token of alice
// kept in the route's token store.
func boundFixture(t *testing.T, srv *dpopServer) (*fixture, *tokens.Source, *upstream.Token) {
	up := httptest.NewTLSServer(srv)
	t.Cleanup(up.Close)
	f := newFixture(t, up)
	rc := configtest.Route(t, up.URL, "{}")
	src := &tokens.Source{Route: rc, Records: store.Records[upstream.Token]{B: store.NewMemory(), NS: tokens.NSUpstream}, Log: slog.New(slog.DiscardHandler)}
	f.h = New(Options{Route: rc, Transport: f.h.o.Transport, Tokens: src,
		Responder: &apierror.Responder{Log: slog.New(slog.DiscardHandler)}, Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler), Now: time.Now, Streams: &Streams{}})
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	srv.jkt = k.Thumbprint()
	tok := &upstream.Token{Key: "alice", AccessToken: "at-1", TokenType: "DPoP", DPoPKey: k.Bytes(), Subject: "alice"}
	if err := src.Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return f, src, tok
}

func (f *fixture) postWith(t *testing.T, tok *upstream.Token) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(request.With(r.Context(), &request.Scope{Token: tok, BindingKey: tok.Key}))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// TestBoundTokenGoesWithAFreshProof: a DPoP-bound token is presented with
// the DPoP scheme and a proof of its key for each request (its hash, the
// method and the URL), never the same proof twice; the remote server's
// nonce challenge is answered once with its nonce.
func TestBoundTokenGoesWithAFreshProof(t *testing.T) {
	srv := &dpopServer{nonce: "n-1"}
	f, _, tok := boundFixture(t, srv)
	for i := range 2 {
		if w := f.postWith(t, tok); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s (server saw %v)", i, w.Code, w.Body, srv.errs)
		}
	}
	// Three requests reached it: the first without the nonce it had not
	// given yet, its retry, and the second request with the nonce at once.
	if len(srv.jtis) != 3 || len(srv.errs) != 0 || srv.jtis[0] == srv.jtis[1] || srv.jtis[1] == srv.jtis[2] {
		t.Errorf("jtis %v, errors %v: want 3 distinct proofs, all good", srv.jtis, srv.errs)
	}
}

// TestNonceRefusedKeepsTheToken: a remote server that refuses the nonce
// it just gave gets one retry; the MCP client gets upstream_dpop_nonce and
// the user's token is kept (it is the nonce, not the token, that failed).
func TestNonceRefusedKeepsTheToken(t *testing.T) {
	srv := &dpopServer{nonce: "n-1", rotate: true}
	f, src, tok := boundFixture(t, srv)
	w := f.postWith(t, tok)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), string(apierror.CodeDPoPNonce)) {
		t.Fatalf("answer %d %s, want 502 %s", w.Code, w.Body, apierror.CodeDPoPNonce)
	}
	if len(srv.jtis) != 2 {
		t.Errorf("the remote server got %d requests, want 2 (one retry, no loop)", len(srv.jtis))
	}
	if kept, _ := src.Get(context.Background(), "alice"); kept == nil {
		t.Error("the token was dropped for a nonce the remote server would not take")
	}
}
