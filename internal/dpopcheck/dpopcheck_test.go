package dpopcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	tokenURL = "https://auth.provider.com/token"
	mcpURL   = "https://remote-mcp.provider.com/mcp"
	token    = "eyJhbGciOiJFUzI1NiJ9.e30.sig" // any access token: only its hash matters
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t *testing.T, s *Signer, hdr, claims map[string]any) string {
	t.Helper()
	p, err := s.Sign(hdr, claims)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// raw builds a compact JWS from a header and claims with sig as its
// signature part, as an attacker would.
func raw(hdr, claims map[string]any, sig string) string {
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

func dpopHeader(vals ...string) http.Header {
	h := http.Header{}
	for _, v := range vals {
		h.Add("DPoP", v)
	}
	return h
}

func TestVerify(t *testing.T) {
	s := newSigner(t)
	other := newSigner(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := Claims(http.MethodPost, mcpURL, token, "", start)
		if change != nil {
			change(c)
		}
		return c
	}
	valid := func() string { return sign(t, s, nil, claims(nil)) }
	privateJWK := func() map[string]any {
		j := s.PublicJWK()
		b, _ := j.MarshalJSON()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		d, err := s.Key.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["d"] = base64.RawURLEncoding.EncodeToString(d)
		return m
	}
	rsaProof := func() string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey},
			(&jose.SignerOptions{}).WithType(HeaderType).WithHeader("jwk", jose.JSONWebKey{Key: rsaKey.Public()}))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims(nil))
		obj, err := sig.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}

	tests := []struct {
		name    string
		header  func() http.Header
		req     Request // zero: POST mcpURL with token
		want    string  // "" accepted, else code ": " description
		wantJKT string
	}{
		{name: "valid", header: func() http.Header { return dpopHeader(valid()) }, wantJKT: s.JKT()},
		{name: "no header", header: func() http.Header { return http.Header{} },
			want: "invalid_dpop_proof: the request carries no DPoP header"},
		{name: "two headers", header: func() http.Header { return dpopHeader(valid(), valid()) },
			want: "invalid_dpop_proof: the request carries 2 DPoP headers; RFC 9449 section 4.3 allows exactly one"},
		{name: "not compact", header: func() http.Header { return dpopHeader("abc.def") },
			want: "invalid_dpop_proof: the DPoP header is not a JWS in compact serialization: want three base64url parts separated by dots, got 2"},
		{name: "header not JSON", header: func() http.Header { return dpopHeader("!!.e30.sig") },
			want: "invalid_dpop_proof: the proof's JOSE header is not base64url-encoded JSON"},
		{name: "typ JWT", header: func() http.Header { return dpopHeader(sign(t, s, map[string]any{"typ": "JWT"}, claims(nil))) },
			want: "invalid_dpop_proof: the proof's typ is 'JWT', not dpop+jwt (RFC 9449 section 4.2)"},
		{name: "typ absent", header: func() http.Header { return dpopHeader(sign(t, s, map[string]any{"typ": nil}, claims(nil))) },
			want: "invalid_dpop_proof: the proof's typ is (absent), not dpop+jwt (RFC 9449 section 4.2)"},
		{name: "alg none", header: func() http.Header {
			return dpopHeader(raw(map[string]any{"typ": HeaderType, "alg": "none", "jwk": s.PublicJWK()}, claims(nil), ""))
		}, want: "invalid_dpop_proof: the proof's alg is 'none': a DPoP proof must be signed with an asymmetric key (RFC 9449 section 4.2)"},
		{name: "alg HS256", header: func() http.Header {
			return dpopHeader(raw(map[string]any{"typ": HeaderType, "alg": "HS256", "jwk": s.PublicJWK()}, claims(nil), "c2ln"))
		}, want: "invalid_dpop_proof: the proof's alg is 'HS256': a DPoP proof must be signed with an asymmetric key (RFC 9449 section 4.2)"},
		{name: "alg RS256 not accepted", header: func() http.Header { return dpopHeader(rsaProof()) },
			want: "invalid_dpop_proof: the proof's alg RS256 is not one this server accepts (ES256)"},
		{name: "no jwk", header: func() http.Header { return dpopHeader(sign(t, s, map[string]any{"jwk": nil}, claims(nil))) },
			want: "invalid_dpop_proof: the proof has no jwk header: it must carry its public key (RFC 9449 section 4.2)"},
		{name: "private jwk", header: func() http.Header { return dpopHeader(sign(t, s, map[string]any{"jwk": privateJWK()}, claims(nil))) },
			want: "invalid_dpop_proof: the proof's jwk carries the private member 'd': it must be a public key (RFC 9449 section 4.2)"},
		{name: "signed by another key than its jwk", header: func() http.Header {
			return dpopHeader(sign(t, s, map[string]any{"jwk": other.PublicJWK()}, claims(nil)))
		}, want: "invalid_dpop_proof: the proof's signature does not verify with the jwk of its header"},
		{name: "no jti", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { delete(c, "jti") })))
		},
			want: "invalid_dpop_proof: the proof has no jti"},
		{name: "empty jti", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["jti"] = "" })))
		},
			want: "invalid_dpop_proof: the proof has no jti"},
		{name: "jti not a string", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["jti"] = 7 })))
		},
			want: "invalid_dpop_proof: the proof's claims are malformed: json: cannot unmarshal number into Go struct field claims.jti of type string"},
		{name: "no htm", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { delete(c, "htm") })))
		},
			want: "invalid_dpop_proof: the proof has no htm"},
		{name: "htm of another method", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htm"] = "GET" })))
		},
			want: "invalid_dpop_proof: the proof's htm 'GET' is not the request's method POST"},
		{name: "no htu", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { delete(c, "htu") })))
		},
			want: "invalid_dpop_proof: the proof has no htu"},
		{name: "htu with a query", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = mcpURL + "?a=b" })))
		}, want: "invalid_dpop_proof: the proof's htu https://remote-mcp.provider.com/mcp?a=b has a query or a fragment; RFC 9449 section 4.2 wants the URI without them"},
		{name: "htu with a fragment", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = mcpURL + "#x" })))
		}, want: "invalid_dpop_proof: the proof's htu https://remote-mcp.provider.com/mcp#x has a query or a fragment; RFC 9449 section 4.2 wants the URI without them"},
		{name: "htu of another host", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = "https://mcp.example.com/mcp" })))
		}, want: "invalid_dpop_proof: the proof's htu https://mcp.example.com/mcp is not the request's URI https://remote-mcp.provider.com/mcp"},
		{name: "htu of another path", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = "https://remote-mcp.provider.com/mcp/" })))
		}, want: "invalid_dpop_proof: the proof's htu https://remote-mcp.provider.com/mcp/ is not the request's URI https://remote-mcp.provider.com/mcp"},
		{name: "htu of another scheme", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = "http://remote-mcp.provider.com/mcp" })))
		}, want: "invalid_dpop_proof: the proof's htu http://remote-mcp.provider.com/mcp is not the request's URI https://remote-mcp.provider.com/mcp"},
		{name: "htu relative", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = "/mcp" })))
		},
			want: "invalid_dpop_proof: the proof's htu '/mcp' is not an absolute URI"},
		{name: "htu with case and default port", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = "HTTPS://Remote-MCP.provider.com:443/mcp" })))
		}, wantJKT: s.JKT()},
		{name: "request query ignored", header: func() http.Header { return dpopHeader(valid()) },
			req: Request{Method: http.MethodPost, URL: mcpURL + "?session=1", AccessToken: token}, wantJKT: s.JKT()},
		{name: "no iat", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { delete(c, "iat") })))
		},
			want: "invalid_dpop_proof: the proof has no iat"},
		{name: "iat too old", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["iat"] = start.Add(-61 * time.Second).Unix() })))
		}, want: "invalid_dpop_proof: the proof's iat 2026-03-01T11:58:59Z is more than 1m0s from now (2026-03-01T12:00:00Z)"},
		{name: "iat in the future", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["iat"] = start.Add(61 * time.Second).Unix() })))
		}, want: "invalid_dpop_proof: the proof's iat 2026-03-01T12:01:01Z is more than 1m0s from now (2026-03-01T12:00:00Z)"},
		{name: "iat at the window's edge", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["iat"] = start.Add(-60 * time.Second).Unix() })))
		}, wantJKT: s.JKT()},
		{name: "no ath with a token", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { delete(c, "ath") })))
		},
			want: "invalid_dpop_proof: the proof has no ath, and it came with an access token (RFC 9449 section 4.3)"},
		{name: "ath of another token", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["ath"] = Ath("another token") })))
		}, want: "invalid_dpop_proof: the proof's ath is not the hash of the access token it came with"},
		{name: "ath ignored at a token endpoint", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["htu"] = tokenURL; c["ath"] = "whatever" })))
		}, req: Request{Method: http.MethodPost, URL: tokenURL}, wantJKT: s.JKT()},
		{name: "nonce required, none sent", header: func() http.Header { return dpopHeader(valid()) },
			req:  Request{Method: http.MethodPost, URL: mcpURL, AccessToken: token, Nonce: "n-1"},
			want: "use_dpop_nonce: this server requires a DPoP nonce: send the proof again with the nonce of the DPoP-Nonce header"},
		{name: "nonce required, a stale one sent", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["nonce"] = "n-0" })))
		}, req: Request{Method: http.MethodPost, URL: mcpURL, AccessToken: token, Nonce: "n-1"},
			want: "use_dpop_nonce: the proof's nonce is not the current one: send the proof again with the nonce of the DPoP-Nonce header"},
		{name: "nonce required and sent", header: func() http.Header {
			return dpopHeader(sign(t, s, nil, claims(func(c map[string]any) { c["nonce"] = "n-1" })))
		}, req: Request{Method: http.MethodPost, URL: mcpURL, AccessToken: token, Nonce: "n-1"}, wantJKT: s.JKT()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Now: func() time.Time { return start }, Replay: &ReplayCache{Now: func() time.Time { return start }}}
			req := tt.req
			if req.Method == "" {
				req = Request{Method: http.MethodPost, URL: mcpURL, AccessToken: token}
			}
			p, err := v.Verify(tt.header(), req)
			got := ""
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not an *Error", err)
				}
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if tt.want == "" && (p == nil || p.JKT != tt.wantJKT || p.JTI == "") {
				t.Errorf("proof %+v, want jkt %s and a jti", p, tt.wantJKT)
			}
		})
	}
}

// TestVerifyReplay accepts a proof once.
func TestVerifyReplay(t *testing.T) {
	s := newSigner(t)
	now := start
	clock := func() time.Time { return now }
	v := &Verifier{Now: clock, Replay: &ReplayCache{Now: clock}}
	p, err := s.Proof(http.MethodGet, mcpURL, token, "", start)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Method: http.MethodGet, URL: mcpURL, AccessToken: token}
	if _, err := v.Verify(dpopHeader(p), req); err != nil {
		t.Fatalf("first use refused: %v", err)
	}
	now = now.Add(30 * time.Second)
	got, err := v.Verify(dpopHeader(p), req)
	if err == nil || err.Error() != "invalid_dpop_proof: the proof was used before" {
		t.Fatalf("replay: got %v", err)
	}
	if got == nil || got.JKT != s.JKT() {
		t.Errorf("a refused replay should still name its key: %+v", got)
	}
	// A fresh proof of the same key is fine.
	p2, _ := s.Proof(http.MethodGet, mcpURL, token, "", now)
	if _, err := v.Verify(dpopHeader(p2), req); err != nil {
		t.Errorf("fresh proof refused: %v", err)
	}
}

func TestReplayCacheExpiresAndIsBounded(t *testing.T) {
	now := start
	c := &ReplayCache{Max: 2, Now: func() time.Time { return now }}
	exp := func() time.Time { return now.Add(time.Minute) }
	if !c.Remember("a", exp()) || c.Remember("a", exp()) {
		t.Fatal("a: want new, then seen")
	}
	now = now.Add(time.Minute)
	if !c.Remember("a", exp()) {
		t.Fatal("a should have expired")
	}
	c.Remember("b", exp())
	c.Remember("c", exp()) // over Max: a, the oldest, goes
	if c.Len() != 2 {
		t.Fatalf("len %d, want 2", c.Len())
	}
	if c.Remember("b", exp()) {
		t.Error("b was forgotten before a")
	}
	if !c.Remember("a", exp()) {
		t.Error("a should have been evicted")
	}
}

// TestSignerThumbprint checks the jkt go-jose computes against RFC 7638
// done by hand, so that a wrong thumbprint on both sides cannot agree.
func TestSignerThumbprint(t *testing.T) {
	// RFC 7638 §3.2: SHA-256 of the required members in lexicographic
	// order, without whitespace, done by hand.
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{Key: k}
	pt, err := k.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:]) + `"}`
	if want := Ath(canon); s.JKT() != want {
		t.Errorf("jkt %s, want %s", s.JKT(), want)
	}
	if strings.ContainsAny(s.JKT(), "+/=") {
		t.Errorf("jkt %s is not base64url without padding", s.JKT())
	}
}
