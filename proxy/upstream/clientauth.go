package upstream

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientAuth is how the route's client authenticates at the remote
// authorization server's token and revocation endpoints (RFC 6749 §2.3):
// not at all (a public client, which sends its client_id), with a secret
// (client_secret_basic, or client_secret_post when the grant says
// SecretInBody), or with a private key (private_key_jwt: a signed client
// assertion, RFC 7523 §2.2). The zero value is a public client. It is read
// from configuration at each use, never stored with the tokens.
type ClientAuth struct {
	// Secret is a confidential client's shared secret.
	Secret string
	// Key signs the client assertions of a private_key_jwt client: an EC
	// P-256 key (ES256) or an RSA key (RS256). It wins over Secret.
	Key crypto.Signer
	// KeyID, when set, is the assertion's kid header: the key's id in the
	// JSON Web Key Set the authorization server knows.
	KeyID string
	// Now is the clock of the assertion's iat and exp; nil is time.Now.
	Now func() time.Time
}

// AssertionType is RFC 7523 §2.2's client_assertion_type.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid: long enough
// for one request to arrive, short enough that a copy is of little use
// (RFC 7523 §3 asks for an expiry; authorization servers commonly refuse
// assertions that live for more than a few minutes).
const AssertionLifetime = time.Minute

// SigningAlgorithm is the JWS algorithm the proxy signs client assertions
// with for key: ES256 for EC P-256, RS256 for RSA of at least 2048 bits.
// Any other key is an error that says which keys work.
func SigningAlgorithm(key crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
		return "", fmt.Errorf("it is an EC key on %s; use an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return jose.RS256, nil
		}
		return "", fmt.Errorf("it is an RSA key of %d bits; RSA keys need at least 2048 bits", k.N.BitLen())
	}
	return "", fmt.Errorf("it is a %T key; use an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)", key)
}

// assertion is the client assertion of the grant's client for one request
// (RFC 7523 §3): iss and sub are the client id, aud the authorization
// server's issuer (the token endpoint when the grant has no issuer, as with
// static endpoints), a fresh jti, iat now and exp AssertionLifetime later.
func (g *Grant) assertion(a ClientAuth) (string, error) {
	if a.Key == nil {
		return "", errors.New("no key to sign the client assertion with")
	}
	alg, err := SigningAlgorithm(a.Key.Public())
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if a.KeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), a.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: a.Key}, opts)
	if err != nil {
		return "", err
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := jwt.Claims{
		Issuer:   g.ClientID,
		Subject:  g.ClientID,
		Audience: jwt.Audience{g.assertionAudience()},
		ID:       hex.EncodeToString(jti[:]),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// assertionAudience identifies the authorization server in a client
// assertion: its issuer identifier, which RFC 7523 §3 and the MCP client
// credentials extension name; the token endpoint only when no issuer is
// known.
func (g *Grant) assertionAudience() string {
	if g.Issuer != "" {
		return g.Issuer
	}
	return g.TokenURL
}

// authenticate adds the client's authentication to a form for endpoint and
// reports whether it goes in HTTP Basic instead (client_secret_basic).
func (g *Grant) authenticate(form url.Values, a ClientAuth) (basic bool, err error) {
	switch {
	case a.Key != nil:
		assertion, err := g.assertion(a)
		if err != nil {
			return false, fmt.Errorf("signing the client assertion: %w", err)
		}
		form.Set("client_id", g.ClientID)
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", assertion)
	case a.Secret == "":
		form.Set("client_id", g.ClientID)
	case g.SecretInBody:
		form.Set("client_id", g.ClientID)
		form.Set("client_secret", a.Secret)
	default:
		return true, nil
	}
	return false, nil
}
