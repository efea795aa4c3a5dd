package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2, RFC 7521 §4.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Bounds on client assertions (RFC 7523 §3).
const (
	// MaxAssertionLifetime is how far ahead of now an assertion's exp may
	// be: an assertion is made for one request, and its jti is remembered
	// until it expires.
	MaxAssertionLifetime = 5 * time.Minute
	// AssertionLeeway is the clock skew allowed between the client and
	// the proxy on exp, nbf and iat.
	AssertionLeeway = 30 * time.Second
	// MaxAssertionSize bounds the client_assertion parameter.
	MaxAssertionSize = 8 << 10
	// replayWait bounds how long the jti check waits on the store's
	// lease: a first use takes it at once; a replay finds it held.
	replayWait = 250 * time.Millisecond
)

// errClient is a client authentication failure: an RFC 6749 §5.2
// invalid_client whose text says what was wrong.
type errClient string

func (e errClient) Error() string { return string(e) }

// assertionClaims are the claims the proxy reads from a client assertion.
type assertionClaims struct {
	jwt.Claims
}

// parseAssertion reads a client assertion without verifying it: a signed
// JWT (compact JWS) with an accepted algorithm. It returns the token, the
// key id of its signature and its unverified claims, which only pick the
// client and its key.
func parseAssertion(raw string) (*jwt.JSONWebToken, string, *assertionClaims, error) {
	if len(raw) > MaxAssertionSize {
		return nil, "", nil, errClient(fmt.Sprintf("the client_assertion is larger than %d bytes", MaxAssertionSize))
	}
	tok, err := jwt.ParseSigned(raw, clientid.SigningAlgs)
	if err != nil {
		return nil, "", nil, errClient("the client_assertion is not a JWT signed with one of " + algList() + ": " + err.Error())
	}
	if len(tok.Headers) != 1 {
		return nil, "", nil, errClient("the client_assertion must have exactly one signature")
	}
	var c assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, "", nil, errClient("the client_assertion's claims are not a JSON object: " + err.Error())
	}
	return tok, tok.Headers[0].KeyID, &c, nil
}

func algList() string {
	var s []string
	for _, a := range clientid.SigningAlgs {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

// assertionClientID is the client id a token request without client_id
// names: the iss of its client assertion (RFC 7521 §4.2 makes client_id
// optional then), which authenticateClient checks once it verified it.
func assertionClientID(f url.Values) string {
	if raw := f.Get("client_assertion"); raw != "" {
		if _, _, c, err := parseAssertion(raw); err == nil {
			return c.Issuer
		}
	}
	return ""
}

// authenticateClient checks a token request's client authentication
// against the method the client's document named when it was authorized:
// none sends no assertion; private_key_jwt sends an RFC 7523 assertion
// signed with a key of its document, for this token endpoint, fresh and
// not used before. The error is an errClient, or a storage failure.
func (s *Server) authenticateClient(ctx context.Context, f url.Values, clientID, method string) error {
	raw, typ := f.Get("client_assertion"), f.Get("client_assertion_type")
	if method != clientid.AuthPrivateKeyJWT {
		if raw != "" || typ != "" {
			return errClient("the client's metadata document says token_endpoint_auth_method none: send no client_assertion")
		}
		return nil
	}
	switch {
	case raw == "":
		return errClient("the client's metadata document asks for private_key_jwt: send client_assertion_type " + AssertionType + " and a client_assertion signed with the client's key (RFC 7523)")
	case typ != AssertionType:
		return errClient("client_assertion_type must be " + AssertionType)
	}
	tok, kid, claims, err := parseAssertion(raw)
	if err != nil {
		return err
	}
	client, err := s.o.Clients.Resolve(ctx, clientID)
	if err != nil {
		return errClient("the client's keys could not be had: " + err.Error())
	}
	keys, err := s.o.Clients.Keys(ctx, client, kid)
	if err != nil {
		return errClient("the client's keys could not be had: " + err.Error())
	}
	if len(keys) == 0 {
		return errClient(fmt.Sprintf("the client_assertion names the key id %q, which the client's published keys lack", kid))
	}
	if !verifies(tok, keys, claims) {
		return errClient("the client_assertion's signature does not verify with the client's published keys")
	}
	if err := s.checkClaims(claims, clientID); err != nil {
		return err
	}
	return s.useJTI(ctx, clientID, claims)
}

// verifies checks tok's signature with each key until one verifies,
// filling claims from the verified payload.
func verifies(tok *jwt.JSONWebToken, keys []jose.JSONWebKey, claims *assertionClaims) bool {
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if tok.Claims(k.Key, claims) == nil {
			return true
		}
	}
	return false
}

// checkClaims applies RFC 7523 §3 to verified claims.
func (s *Server) checkClaims(c *assertionClaims, clientID string) error {
	now := s.o.Now()
	auds := []string{s.origin + PathToken, s.origin}
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return errClient("the client_assertion's iss and sub must both be the client id " + clientid.Redact(clientID))
	case !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(auds, a) }):
		return errClient(fmt.Sprintf("the client_assertion's aud must be the proxy's token endpoint %s or its issuer %s", auds[0], auds[1]))
	case c.Expiry == nil:
		return errClient("the client_assertion has no exp")
	case !now.Before(c.Expiry.Time().Add(AssertionLeeway)):
		return errClient("the client_assertion has expired; sign a new one for each request")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + AssertionLeeway)):
		return errClient(fmt.Sprintf("the client_assertion's exp is more than %d minutes ahead", int(MaxAssertionLifetime.Minutes())))
	case c.NotBefore != nil && now.Add(AssertionLeeway).Before(c.NotBefore.Time()):
		return errClient("the client_assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && now.Add(AssertionLeeway).Before(c.IssuedAt.Time()):
		return errClient("the client_assertion was issued in the future (iat)")
	case c.ID == "":
		return errClient("the client_assertion has no jti")
	}
	return nil
}

// useJTI records an assertion's jti as used until it expires, in the
// store, so replicas that share it refuse a replay too: the record is a
// lease that only its first use can take.
func (s *Server) useJTI(ctx context.Context, clientID string, c *assertionClaims) error {
	ttl := c.Expiry.Time().Add(AssertionLeeway).Sub(s.o.Now())
	ctx, cancel := context.WithTimeout(ctx, replayWait)
	defer cancel()
	_, err := s.o.Backend.Lock(ctx, "assertion-jti:"+store.SecretKey(clientID+"\x00"+c.ID), ttl)
	switch {
	case err == nil:
		return nil // never unlocked: the lease ends with the assertion
	case errors.Is(err, context.DeadlineExceeded):
		return errClient("the client_assertion's jti was already used; sign a new assertion for each request")
	}
	return err
}
