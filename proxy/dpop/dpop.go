// Package dpop is the proxy's side of OAuth 2.0 Demonstrating Proof of
// Possession (RFC 9449) towards remote servers: a key per upstream token,
// a proof signed for each request that presents it or asks for it, and the
// nonces the remote servers hand out. MCP clients never see any of it: the
// proxy terminates DPoP. Proofs are JWTs signed with go-jose; the one Go
// DPoP library that is kept up signs with Ed25519 and RSA only, and the
// algorithm MCP servers and the official suite ask for is ES256.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Alg is the one algorithm the proxy signs proofs with: ES256, which RFC
// 9449 servers and the MCP DPoP extension expect everywhere.
const Alg = "ES256"

// Scheme is the Authorization scheme of a DPoP-bound token (RFC 9449 §7.1).
const Scheme = "DPoP"

// Key is the key one upstream token is bound to: a P-256 key the proxy
// made for it, kept (sealed) with the token for as long as the token and
// its refresh token live.
type Key struct {
	priv   *ecdsa.PrivateKey
	thumb  string
	once   sync.Once
	signer jose.Signer
	err    error
}

// NewKey makes a key for a new token.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newKey(priv)
}

// ParseKey reads a key that Bytes wrote.
func ParseKey(b []byte) (*Key, error) {
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("the stored DPoP key is unreadable: %w", err)
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	t, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, thumb: base64.RawURLEncoding.EncodeToString(t)}, nil
}

// Bytes is the private key in raw form (SEC 1 §2.3.6), as the token record
// keeps it.
func (k *Key) Bytes() []byte {
	b, _ := k.priv.Bytes() // a P-256 key always encodes
	return b
}

// Thumbprint is the key's JWK SHA-256 thumbprint (RFC 7638): the jkt a
// bound token's cnf names.
func (k *Key) Thumbprint() string { return k.thumb }

func (k *Key) sign() (jose.Signer, error) {
	k.once.Do(func() {
		opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
		k.signer, k.err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	})
	return k.signer, k.err
}

// Proof signs a proof for one request (RFC 9449 §4.2): method and target
// (without query or fragment), a fresh jti, iat now, ath when the request
// presents accessToken, and the server's nonce when it gave one.
func (k *Key) Proof(method string, target *url.URL, accessToken, nonce string, now time.Time) (string, error) {
	s, err := k.sign()
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c := proofClaims{JTI: base64.RawURLEncoding.EncodeToString(jti), HTM: method, HTU: HTU(target),
		IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// HTU is a proof's htu for target: the URL without query, fragment or
// user information (RFC 9449 §4.2, §4.3).
func HTU(target *url.URL) string {
	u := url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path, RawPath: target.RawPath}
	return u.String()
}
