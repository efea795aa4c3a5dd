package dpop_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
)

type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// check reads a proof as a resource server would (RFC 9449 §4.3): typ,
// alg, the embedded public key, the signature, and returns its claims and
// the key's thumbprint.
func check(t *testing.T, proof string) (claims, string) {
	t.Helper()
	tok, err := jwt.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("proof %q: %v", proof, err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Errorf("typ %v, want dpop+jwt", h.ExtraHeaders["typ"])
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("jwk header missing or not public: %+v", h.JSONWebKey)
	}
	var c claims
	if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	return c, base64.RawURLEncoding.EncodeToString(tp)
}

func TestProof(t *testing.T) {
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	u, _ := url.Parse("https://user:pw@mcp.remote.test:8443/a/mcp?x=1#frag")
	p1, err := k.Proof("POST", u, "the-token", "n-1", now)
	if err != nil {
		t.Fatal(err)
	}
	c, thumb := check(t, p1)
	sum := sha256.Sum256([]byte("the-token"))
	want := claims{JTI: c.JTI, HTM: "POST", HTU: "https://mcp.remote.test:8443/a/mcp", IAT: now.Unix(),
		ATH: base64.RawURLEncoding.EncodeToString(sum[:]), Nonce: "n-1"}
	if c != want || c.JTI == "" {
		t.Errorf("claims %+v, want %+v", c, want)
	}
	if thumb != k.Thumbprint() {
		t.Errorf("thumbprint %s, key says %s", thumb, k.Thumbprint())
	}
	p2, _ := k.Proof("POST", u, "the-token", "n-1", now)
	if c2, _ := check(t, p2); c2.JTI == c.JTI {
		t.Error("two proofs share a jti: each request needs a fresh one")
	}
	p3, _ := k.Proof("POST", u, "", "", now)
	if c3, _ := check(t, p3); c3.ATH != "" || c3.Nonce != "" {
		t.Errorf("a token request's proof has ath %q nonce %q", c3.ATH, c3.Nonce)
	}
	again, err := dpop.ParseKey(k.Bytes())
	if err != nil || again.Thumbprint() != k.Thumbprint() {
		t.Errorf("ParseKey(Bytes) = %v, %v: not the same key", again, err)
	}
	if _, err := dpop.ParseKey([]byte("short")); err == nil {
		t.Error("ParseKey took a broken key")
	}
}

// nonceServer challenges every request whose proof lacks its nonce, as
// an authorization server (400) or a resource server (401) does.
type nonceServer struct {
	mu     sync.Mutex
	status int
	nonce  string
	proofs []claims
	bodies []string
}

func (s *nonceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proof := r.Header.Get("DPoP")
	tok, err := jwt.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	var c claims
	if err == nil {
		err = tok.Claims(tok.Headers[0].JSONWebKey.Key, &c)
	}
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.proofs = append(s.proofs, c)
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "no proof", http.StatusTeapot)
		return
	}
	w.Header().Set("DPoP-Nonce", s.nonce)
	if c.Nonce == s.nonce {
		w.WriteHeader(http.StatusOK)
		return
	}
	if s.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="fresh nonce needed"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, `{"error":"use_dpop_nonce","error_description":"fresh nonce needed"}`)
}

func TestNonceChallengeIsAnsweredOnce(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := &nonceServer{status: status, nonce: "n-1"}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			k, _ := dpop.NewKey()
			nonces := &dpop.Nonces{}
			hc := dpop.Client(ts.Client(), k, nonces, time.Now)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader("grant_type=x"))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(srv.proofs) != 2 {
				t.Fatalf("status %d after %d requests, want 200 after 2 (one challenge, one retry)", resp.StatusCode, len(srv.proofs))
			}
			if srv.proofs[0].Nonce != "" || srv.proofs[1].Nonce != "n-1" || srv.proofs[0].JTI == srv.proofs[1].JTI {
				t.Errorf("proofs %+v: want no nonce, then the server's, with two jtis", srv.proofs)
			}
			if srv.bodies[1] != "grant_type=x" {
				t.Errorf("the retry sent body %q, want the request's body again", srv.bodies[1])
			}
			// The nonce is remembered: the next request carries it at once.
			req, _ = http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader("grant_type=x"))
			resp, _ = hc.Do(req)
			resp.Body.Close()
			if len(srv.proofs) != 3 || srv.proofs[2].Nonce != "n-1" {
				t.Errorf("the next request sent nonce %q in %d requests, want n-1 in one", srv.proofs[len(srv.proofs)-1].Nonce, len(srv.proofs)-2)
			}
			// A server that keeps changing its nonce gets one retry, not a loop.
			before := len(srv.proofs)
			flip := &flipping{srv: srv}
			ts.Config.Handler = flip
			req, _ = http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader("grant_type=x"))
			resp, _ = hc.Do(req)
			resp.Body.Close()
			if got := len(srv.proofs) - before; got != 2 || resp.StatusCode != status {
				t.Errorf("a server whose nonce changes on every request got %d requests and answered %d; want 2 and its challenge passed on", got, resp.StatusCode)
			}
		})
	}
}

// flipping changes the nonce before every request.
type flipping struct {
	srv *nonceServer
	n   int
}

func (f *flipping) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.n++
	f.srv.mu.Lock()
	f.srv.nonce = "flip-" + strings.Repeat("x", f.n)
	f.srv.mu.Unlock()
	f.srv.ServeHTTP(w, r)
}

// TestBadRequestThatIsNotANonceChallenge: a 400 for another reason is
// passed on whole, not retried.
func TestBadRequestThatIsNotANonceChallenge(t *testing.T) {
	n := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("DPoP-Nonce", "n-1")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
	}))
	defer ts.Close()
	k, _ := dpop.NewKey()
	resp, err := dpop.Client(ts.Client(), k, &dpop.Nonces{}, time.Now).Post(ts.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n != 1 || string(b) != `{"error":"invalid_grant"}` {
		t.Errorf("%d requests, body %q: want one request and the whole answer", n, b)
	}
}

// TestPresentedTokenGetsItsHash: a request with Authorization: DPoP gets
// a proof with ath; one without does not, and a request without a key is
// sent untouched.
func TestPresentedTokenGetsItsHash(t *testing.T) {
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("DPoP"))
	}))
	defer ts.Close()
	k, _ := dpop.NewKey()
	tr := &dpop.Transport{Base: ts.Client().Transport, Nonces: &dpop.Nonces{}, Now: time.Now,
		Key: func(r *http.Request) *dpop.Key {
			if r.Header.Get("X-No-Key") != "" {
				return nil
			}
			return k
		}}
	for _, h := range []http.Header{{"Authorization": {"DPoP tok-1"}}, {"Authorization": {"Bearer tok-1"}}, {"X-No-Key": {"1"}}} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/mcp?q=1", nil)
		req.Header = h
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("DPoP") != "" {
			t.Error("the transport changed the caller's request")
		}
	}
	c, _ := check(t, got[0])
	sum := sha256.Sum256([]byte("tok-1"))
	if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || c.HTM != "GET" || c.HTU != ts.URL+"/mcp" {
		t.Errorf("claims %+v: want the token's ath, GET and the URL without its query", c)
	}
	if c, _ := check(t, got[1]); c.ATH != "" {
		t.Error("a bearer presentation got an ath")
	}
	if got[2] != "" {
		t.Error("a request without a key got a proof")
	}
}

// TestSameNonceIsNotSentAgain: a server that refuses the very nonce the
// proof carried is not asked again with it.
func TestSameNonceIsNotSentAgain(t *testing.T) {
	n := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("DPoP-Nonce", "n-1")
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer ts.Close()
	k, _ := dpop.NewKey()
	nonces := &dpop.Nonces{}
	nonces.Set(ts.URL, "n-1")
	resp, err := dpop.Client(ts.Client(), k, nonces, time.Now).Get(ts.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n != 1 || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%d requests, answer %d: want one, and the challenge passed on", n, resp.StatusCode)
	}
}

// BenchmarkProof is the cost a DPoP-bound token adds to each request the
// proxy forwards: one proof, signed ES256.
func BenchmarkProof(b *testing.B) {
	k, _ := dpop.NewKey()
	u, _ := url.Parse("https://remote-mcp.provider.com/mcp")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Proof("POST", u, "an-access-token-of-some-length", "", now); err != nil {
			b.Fatal(err)
		}
	}
}
