package mockas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// signingKey is one key pair and its signers.
type signingKey struct {
	public   jose.JSONWebKey
	atSigner jose.Signer // typ at+jwt (RFC 9068 §2.1)
	idSigner jose.Signer // typ JWT
}

// newSigningKey generates a key for alg: RSA 2048 or P-256.
func newSigningKey(alg jose.SignatureAlgorithm) (*signingKey, error) {
	var priv, pub any
	switch alg {
	case jose.RS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		priv, pub = k, &k.PublicKey
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		priv, pub = k, &k.PublicKey
	default:
		return nil, fmt.Errorf("unsupported algorithm %s", alg)
	}
	pk := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	tp, err := pk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// The RFC 7638 thumbprint is a stable key id that no two keys share.
	pk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	sk := jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: pk.KeyID, Algorithm: string(alg)}}
	at, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	id, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &signingKey{public: pk, atSigner: at, idSigner: id}, nil
}

// RotateKey generates a new signing key and makes it current. Earlier keys
// stay published in the JWKS, so tokens they signed still verify.
func (s *Server) RotateKey() error {
	k, err := newSigningKey(s.alg)
	if err != nil {
		return fmt.Errorf("mockas: generate signing key: %w", err)
	}
	s.keyMu.Lock()
	s.keys = append(s.keys, k)
	s.keyMu.Unlock()
	return nil
}

func (s *Server) currentKey() *signingKey {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return s.keys[len(s.keys)-1]
}

func (s *Server) keyByID(kid string) *signingKey {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	for _, k := range s.keys {
		if k.public.KeyID == kid {
			return k
		}
	}
	return nil
}

// JWKS returns the published key set: public keys only, newest last.
func (s *Server) JWKS() jose.JSONWebKeySet {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	set := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, k.public)
	}
	return set
}

// handleJWKS serves the JSON Web Key Set (RFC 7517 §5) at {issuer}/jwks.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	ev := newEvent(r, "jwks")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		s.record(r.Context(), ev, http.StatusMethodNotAllowed)
		return
	}
	set := s.JWKS()
	ev.Detail["keys"] = fmt.Sprint(len(set.Keys))
	control.WriteJSON(w, http.StatusOK, set)
	s.record(r.Context(), ev, http.StatusOK)
}

// accessClaims are the claims of a JWT access token (RFC 9068 §2.2).
type accessClaims struct {
	jwt.Claims
	Scope    string `json:"scope,omitempty"`
	ClientID string `json:"client_id"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// Cnf binds a DPoP-bound token to its key (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is RFC 7800's cnf claim with RFC 9449 §6.1's jkt member.
type confirmation struct {
	JKT string `json:"jkt"`
}

// idClaims are the claims of an ID token (OpenID Connect Core §2) beyond
// the registered ones.
type idClaims struct {
	jwt.Claims
	AuthTime      int64    `json:"auth_time,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	AtHash        string   `json:"at_hash,omitempty"`
	AZP           string   `json:"azp,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

func (s *Server) signAccess(c accessClaims) (string, error) {
	return jwt.Signed(s.currentKey().atSigner).Claims(c).Serialize()
}

func (s *Server) signID(c idClaims) (string, error) {
	return jwt.Signed(s.currentKey().idSigner).Claims(c).Serialize()
}

// atHash is the at_hash of OpenID Connect Core §3.1.3.6: the left half of
// the SHA-256 of the access token (both RS256 and ES256 use SHA-256).
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// errInvalidToken is the cause of every refused bearer token.
var errInvalidToken = errors.New("invalid token")

// parseAccess checks that raw is an access token this server signed:
// signature by a published key and typ at+jwt. It does not check time or
// revocation.
func (s *Server) parseAccess(raw string) (*accessClaims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{s.alg})
	if err != nil {
		return nil, fmt.Errorf("%w: not a JWT signed with %s: %v", errInvalidToken, s.alg, err)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, fmt.Errorf("%w: typ is %q, not at+jwt (RFC 9068 §2.1)", errInvalidToken, typ)
	}
	k := s.keyByID(h.KeyID)
	if k == nil {
		return nil, fmt.Errorf("%w: no published key has kid %q", errInvalidToken, h.KeyID)
	}
	var c accessClaims
	if err := tok.Claims(k.public.Key, &c); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errInvalidToken, err)
	}
	if c.Issuer != s.issuer {
		return nil, fmt.Errorf("%w: iss is %q, not %q", errInvalidToken, c.Issuer, s.issuer)
	}
	return &c, nil
}

// verifyAccess checks an access token this server issued: [Server.parseAccess],
// then the time claims against the server clock, and that neither the token
// nor its grant was revoked.
func (s *Server) verifyAccess(raw string) (*accessClaims, error) {
	c, err := s.parseAccess(raw)
	if err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, Time: s.now()}, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.st.access[c.ID]
	switch {
	case rec == nil:
		return nil, fmt.Errorf("%w: token id %q is unknown", errInvalidToken, c.ID)
	case rec.revoked:
		return nil, fmt.Errorf("%w: the token was revoked", errInvalidToken)
	}
	if f := s.st.families[rec.family]; f != nil && f.revoked {
		return nil, fmt.Errorf("%w: its grant was revoked: %s", errInvalidToken, f.revokedWhy)
	}
	return c, nil
}

// numericDate is jwt.NewNumericDate without the pointer noise.
func numericDate(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
