package mockas

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// grantTypeJWTBearer is RFC 7523 §2.1's grant type.
const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// presentsClientAuth reports whether a token request carries client
// authentication: HTTP Basic, a client secret or a client assertion.
func presentsClientAuth(r *http.Request, form url.Values) bool {
	return r.Header.Get("Authorization") != "" || form.Has("client_secret") || form.Has("client_assertion") || form.Has("client_assertion_type")
}

// grantJWTBearer issues an access token for a workload's JWT presented as
// an authorization grant (RFC 7523 §2.1, §3; SEP-1933), without client
// authentication. The assertion must be signed by a trusted workload
// issuer (iss names it, its key verifies the signature), name this server
// in aud (its issuer, with or without a trailing slash, or the endpoint
// the request came to), carry sub and exp, and be valid now (exp, nbf and
// iat within assertionLeeway). The token's subject is the assertion's sub,
// its audience the requested resource; there is no refresh token: the
// workload presents its JWT again. endpoint is the URL that received the
// request.
func (s *Server) grantJWTBearer(form url.Values, endpoint, jkt string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	tok, oe := parseAssertion(form)
	if oe != nil {
		return nil, nil, oe
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, nil, errf("invalid_grant", "the assertion has no readable claims: %v", err)
	}
	key, ok := s.workloadIssuers[unverified.Issuer]
	if !ok {
		return nil, nil, errf("invalid_grant", "the assertion's iss %q is not a workload issuer this server trusts", unverified.Issuer)
	}
	if alg, _ := assertionAlgorithm(key); tok.Headers[0].Algorithm != string(alg) {
		return nil, nil, errf("invalid_grant", "the assertion is signed with %s, but the key of %s is for %s", tok.Headers[0].Algorithm, unverified.Issuer, alg)
	}
	var c jwt.Claims
	if err := tok.Claims(key, &c); err != nil {
		return nil, nil, errf("invalid_grant", "the assertion's signature does not verify with the key of %s", unverified.Issuer)
	}
	aud := []string{s.issuer, s.issuer + "/", endpoint}
	switch {
	case !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(aud, a) }):
		return nil, nil, errf("invalid_grant", "the assertion's aud %q does not name this server (%s or %s)", []string(c.Audience), s.issuer, endpoint)
	case c.Expiry == nil:
		return nil, nil, errf("invalid_grant", "the assertion has no exp (RFC 7523 §3)")
	case now.After(c.Expiry.Time().Add(assertionLeeway)):
		return nil, nil, errf("invalid_grant", "the assertion expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionLeeway)):
		return nil, nil, errf("invalid_grant", "the assertion is not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionLeeway)):
		return nil, nil, errf("invalid_grant", "the assertion's iat is in the future")
	case c.Subject == "":
		return nil, nil, errf("invalid_grant", "the assertion has no sub (RFC 7523 §3)")
	}
	scopes, e := s.parseScopes(form.Get("scope"))
	if e != nil {
		return nil, nil, e
	}
	for _, sc := range scopes {
		if slices.Contains(oidcScopes, sc) {
			return nil, nil, errf("invalid_scope", "scope %q needs a signed-in user, and a workload's grant has none", sc)
		}
	}
	resource := ""
	if res, ok := form["resource"]; ok {
		if e := s.checkResource(res[0]); e != nil {
			return nil, nil, e
		}
		resource = res[0]
	}
	id := form.Get("client_id")
	if id == "" {
		id = c.Subject
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	famID := randomID()
	fam := &family{client: &clientInfo{ID: id, NoRefresh: true}, sub: c.Subject, resource: resource, scopes: scopes, clientCredentials: true, jkt: jkt}
	resp, iss, oe := s.issueLocked(famID, fam, scopes, "", now)
	if oe != nil {
		return nil, nil, oe
	}
	s.st.families[famID] = fam
	return resp, iss, nil
}

// parseAssertion reads the assertion of a JWT bearer grant request (RFC
// 7523 §2.1): present, and a JWT signed with ES256 or RS256. Its claims
// are the grant's to check.
func parseAssertion(form url.Values) (*jwt.JSONWebToken, *oauthError) {
	raw := form.Get("assertion")
	if raw == "" {
		return nil, errf("invalid_request", "assertion is missing (RFC 7523 §2.1)")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, errf("invalid_grant", "the assertion is not a JWT signed with ES256 or RS256: %v", err)
	}
	return tok, nil
}
