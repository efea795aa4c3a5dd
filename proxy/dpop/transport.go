package dpop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Nonces are the nonces remote servers handed out (the DPoP-Nonce header,
// RFC 9449 §8, §9), by origin: the next proof to that origin carries the
// latest. They live in memory: a replica that has none is challenged once
// and learns it.
type Nonces struct {
	mu sync.Mutex
	m  map[string]string
}

// maxNonces bounds the origins remembered; past it the map starts again.
const maxNonces = 1024

// Get is the nonce of origin, "" when it gave none.
func (n *Nonces) Get(origin string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[origin]
}

// Set remembers origin's nonce.
func (n *Nonces) Set(origin, nonce string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxNonces {
		n.m = make(map[string]string)
	}
	n.m[origin] = nonce
}

// Transport adds a proof to each request whose Key is not nil: for a
// request that presents a DPoP-bound token (Authorization: DPoP) the proof
// carries the token's hash. It remembers the nonces servers give, and when
// a server refuses a proof for want of a fresh nonce (use_dpop_nonce: 400
// from an authorization server, 401 from a resource server) it sends the
// request once more with that nonce, when its body can be sent again.
type Transport struct {
	Base   http.RoundTripper
	Nonces *Nonces
	Now    func() time.Time
	// Key is the key of a request's proof; nil sends it as it is.
	Key func(*http.Request) *Key
}

// RoundTrip sends req with a proof, and once more after a nonce challenge.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	k := t.Key(req)
	if k == nil {
		return t.Base.RoundTrip(req)
	}
	origin := req.URL.Scheme + "://" + req.URL.Host
	sent := t.Nonces.Get(origin)
	resp, err := t.send(req, k, sent)
	if err != nil {
		return nil, err
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		return resp, nil
	}
	t.Nonces.Set(origin, nonce)
	if nonce == sent || !rewindable(req) || !NonceChallenge(resp) {
		return resp, nil
	}
	resp.Body.Close()
	again := req
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again = req.Clone(req.Context())
		again.Body = body
	}
	return t.send(again, k, nonce)
}

// send sends a copy of req with a proof carrying nonce.
func (t *Transport) send(req *http.Request, k *Key, nonce string) (*http.Response, error) {
	proof, err := k.Proof(req.Method, req.URL, PresentedToken(req.Header), nonce, t.Now())
	if err != nil {
		return nil, err
	}
	out := *req
	out.Header = req.Header.Clone()
	out.Header.Set("DPoP", proof)
	return t.Base.RoundTrip(&out)
}

// PresentedToken is the DPoP-bound token a request presents in its
// Authorization header; "" for none (a token request).
func PresentedToken(h http.Header) string {
	scheme, tok, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return ""
	}
	return strings.TrimSpace(tok)
}

func rewindable(req *http.Request) bool {
	return req.GetBody != nil || req.Body == nil || req.Body == http.NoBody
}

// maxErrorBody bounds how much of a 400 answer is read to tell a nonce
// challenge; the caller reads the same bytes afterwards.
const maxErrorBody = 64 << 10

// NonceChallenge reports whether resp asks for a proof with a new nonce:
// a 401 whose DPoP challenge says error="use_dpop_nonce" (a resource
// server, RFC 9449 §9), or a 400 whose OAuth error is use_dpop_nonce (an
// authorization server, §8). A 400's body stays readable.
func NonceChallenge(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
		if err != nil {
			return false
		}
		for _, c := range cs {
			if c.Scheme == "dpop" && c.Params["error"] == "use_dpop_nonce" {
				return true
			}
		}
	case http.StatusBadRequest:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(b, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Client is hc with a proof of k on each request it sends: the client of
// one token request.
func Client(hc *http.Client, k *Key, n *Nonces, now func() time.Time) *http.Client {
	if k == nil {
		return hc
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = &Transport{Base: base, Nonces: n, Now: now, Key: func(*http.Request) *Key { return k }}
	return &c
}
