package mockas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// assertionType is RFC 7523 §2.2's client_assertion_type.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLeeway is the clock skew allowed on a client assertion's exp
// and iat.
const assertionLeeway = 30 * time.Second

// maxAssertionLife bounds exp - now: an assertion that stays valid for
// longer is refused, so that a copied one is of little use.
const maxAssertionLife = 5 * time.Minute

// assertionAlgorithm is the JWS algorithm a client key signs with: ES256
// for EC P-256, RS256 for RSA of at least 2048 bits.
func assertionAlgorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return jose.RS256, nil
		}
	}
	return "", errors.New("the public key must be EC P-256 (ES256) or RSA of at least 2048 bits (RS256)")
}

// verifyAssertion authenticates a private_key_jwt client by the client
// assertion of form (RFC 7523 §3): the client named by client_id, else by
// the assertion's iss, must have a public key that verifies the signature;
// iss and sub must be the client id, aud must name this server (its issuer
// or the endpoint the request came to; a trailing slash is tolerated), exp
// must be present, in the future and at most maxAssertionLife away, and
// jti present and not seen before. endpoint is the URL that received the
// request.
func (s *Server) verifyAssertion(form url.Values, endpoint string) (*clientInfo, *oauthError) {
	if t := form.Get("client_assertion_type"); t != assertionType {
		return nil, errf("invalid_client", "client_assertion_type %q is not %s (RFC 7523 §2.2)", t, assertionType)
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return nil, errf("invalid_client", "client_assertion is missing")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, errf("invalid_client", "client_assertion is not a JWT signed with ES256 or RS256: %v", err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, errf("invalid_client", "client_assertion has no readable claims: %v", err)
	}
	id := form.Get("client_id")
	if id == "" {
		id = unverified.Issuer
	}
	c := s.lookupClient(id)
	if c == nil || c.PublicKey == nil {
		return nil, errf("invalid_client", "client %q has no public key registered here, so it cannot use private_key_jwt", id)
	}
	alg, _ := assertionAlgorithm(c.PublicKey)
	if h := tok.Headers[0].Algorithm; h != string(alg) {
		return nil, errf("invalid_client", "client_assertion is signed with %s, but the client's key is for %s", h, alg)
	}
	var claims jwt.Claims
	if err := tok.Claims(c.PublicKey, &claims); err != nil {
		return nil, errf("invalid_client", "the client_assertion's signature does not verify with the key of client %q", id)
	}
	now := s.now()
	aud := []string{s.issuer, s.issuer + "/", endpoint}
	switch {
	case claims.Issuer != id || claims.Subject != id:
		return nil, errf("invalid_client", "client_assertion iss %q and sub %q must both be the client id %q (RFC 7523 §3)", claims.Issuer, claims.Subject, id)
	case !slices.ContainsFunc(claims.Audience, func(a string) bool { return slices.Contains(aud, a) }):
		return nil, errf("invalid_client", "client_assertion aud %q does not name this server (%s or %s)", []string(claims.Audience), s.issuer, endpoint)
	case claims.Expiry == nil:
		return nil, errf("invalid_client", "client_assertion has no exp (RFC 7523 §3)")
	case now.After(claims.Expiry.Time().Add(assertionLeeway)):
		return nil, errf("invalid_client", "client_assertion expired at %s", claims.Expiry.Time().UTC().Format(time.RFC3339))
	case claims.Expiry.Time().After(now.Add(maxAssertionLife + assertionLeeway)):
		return nil, errf("invalid_client", "client_assertion is valid until %s, more than %s from now", claims.Expiry.Time().UTC().Format(time.RFC3339), maxAssertionLife)
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionLeeway)):
		return nil, errf("invalid_client", "client_assertion iat is in the future")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionLeeway)):
		return nil, errf("invalid_client", "client_assertion is not valid before %s", claims.NotBefore.Time().UTC().Format(time.RFC3339))
	case claims.ID == "":
		return nil, errf("invalid_client", "client_assertion has no jti; each assertion must be unique (RFC 7523 §3)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := id + "\x00" + claims.ID
	if _, seen := s.st.assertions[key]; seen {
		return nil, errf("invalid_client", "client_assertion jti %q was already used; sign a new assertion for each request", claims.ID)
	}
	s.st.assertions[key] = claims.Expiry.Time()
	return c, nil
}
