package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
)

// FuzzParseAssertion: reading a client assertion never panics; what it
// accepts has exactly one signature with an accepted algorithm, and only
// the key that signed it verifies it.
func FuzzParseAssertion(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	good, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "https://c.example/m.json", Subject: "https://c.example/m.json",
		Expiry: jwt.NewNumericDate(time.Unix(1e9, 0)), ID: "j"}).Serialize()
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	hmac, _ := jwt.Signed(hs).Claims(jwt.Claims{Issuer: "x"}).Serialize()
	for _, s := range []string{good, hmac, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x", good[:len(good)/2]} {
		f.Add(s)
	}
	keys := []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1"}}
	others := []jose.JSONWebKey{{Key: &other.PublicKey, KeyID: "k1"}}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, _, claims, err := parseAssertion(raw)
		if err != nil {
			if _, ok := err.(errClient); !ok {
				t.Fatalf("a parse failure that is no invalid_client: %v", err)
			}
			return
		}
		if len(tok.Headers) != 1 || !slices.Contains(clientid.SigningAlgs, jose.SignatureAlgorithm(tok.Headers[0].Algorithm)) {
			t.Fatalf("accepted %q with headers %+v", raw, tok.Headers)
		}
		if verifies(tok, others, &assertionClaims{}) {
			t.Fatalf("a key that signed nothing verifies %q", raw)
		}
		_ = verifies(tok, keys, claims)
	})
}
