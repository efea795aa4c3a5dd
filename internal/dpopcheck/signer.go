package dpopcheck

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Signer makes DPoP proofs with one ES256 key. It is the client side the
// doubles' own tests need; the proxy has its own, which these tests must not
// borrow.
type Signer struct {
	Key *ecdsa.PrivateKey
}

// NewSigner returns a signer with a fresh P-256 key.
func NewSigner() (*Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Signer{Key: k}, nil
}

// PublicJWK is the key a proof's jwk header carries.
func (s *Signer) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.Key.Public(), Algorithm: string(jose.ES256)}
}

// JKT is the key's RFC 7638 SHA-256 thumbprint, base64url.
func (s *Signer) JKT() string {
	k := s.PublicJWK()
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err) // an EC public key always has a thumbprint
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// Ath is the ath claim for an access token.
func Ath(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Claims are a valid proof's claims for method and url at iat, with a fresh
// jti; ath when accessToken is not empty, nonce when nonce is not.
func Claims(method, url, accessToken, nonce string, iat time.Time) map[string]any {
	c := map[string]any{"jti": randomJTI(), "htm": method, "htu": url, "iat": iat.Unix()}
	if accessToken != "" {
		c["ath"] = Ath(accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

// Proof signs a valid proof (see Claims).
func (s *Signer) Proof(method, url, accessToken, nonce string, iat time.Time) (string, error) {
	return s.Sign(nil, Claims(method, url, accessToken, nonce, iat))
}

// Sign signs claims as a proof whose header is typ dpop+jwt and the public
// jwk, changed by hdr: a value replaces a parameter, nil removes it. Tests
// build broken proofs with it.
func (s *Signer) Sign(hdr map[string]any, claims map[string]any) (string, error) {
	h := map[string]any{"typ": HeaderType, "jwk": s.PublicJWK()}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	opts := &jose.SignerOptions{}
	for k, v := range h {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.Key}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func randomJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
