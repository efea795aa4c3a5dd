package mockas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token exchange (RFC 8693) issuing identity assertion JWT authorization
// grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; the
// MCP enterprise-managed authorization extension, SEP-990).
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeIDJAG         = "urn:ietf:params:oauth:token-type:id-jag"
	// typIDJAG is an ID-JAG's JOSE typ header.
	typIDJAG = "oauth-id-jag+jwt"
)

// IDJAGIssuing makes a server an enterprise identity provider: it
// exchanges the ID tokens it issued for ID-JAGs.
type IDJAGIssuing struct {
	// Key signs the ID-JAGs (ES256): the key the authorization servers
	// that trust this identity provider know (Config.IDJAGIssuers).
	Key *ecdsa.PrivateKey
	// Access is the enterprise's policy: for which authorization servers
	// it issues ID-JAGs, and to whom. An audience not listed is refused.
	Access []IDJAGAccess
}

// IDJAGAccess is one authorization server the enterprise has connected.
type IDJAGAccess struct {
	// Audience is the authorization server's issuer.
	Audience string
	// ClientID is the requesting application's client at that
	// authorization server, the ID-JAG's client_id claim.
	ClientID string
	// Users are the subjects who may reach it; nil means every user.
	Users []string
}

// idjagClaims are an ID-JAG's claims.
type idjagClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Resource string `json:"resource,omitempty"`
	Email    string `json:"email,omitempty"`
}

// idjagTTL is an ID-JAG's lifetime: it is redeemed at once.
const idjagTTL = 5 * time.Minute

// grantTokenExchange exchanges an ID token this server issued to the
// authenticated client c for an ID-JAG for the audience and resource the
// request names (RFC 8693 §2.1). Strict: the requested and subject token
// types, the ID token's signature, issuer, audience (c) and expiry, a
// known audience, a resource, and the enterprise's policy for the user.
func (s *Server) grantTokenExchange(form url.Values, c *clientInfo, now time.Time) (*tokenResponse, *issued, *oauthError) {
	ij := s.idjag
	switch {
	case ij == nil:
		return nil, nil, errf("unsupported_grant_type", "this server issues no ID-JAGs: token exchange is off")
	case !c.confidential():
		return nil, nil, errf("unauthorized_client", "client %q is a public client; token exchange is only for clients that authenticate", c.ID)
	case form.Get("requested_token_type") != tokenTypeIDJAG:
		return nil, nil, errf("invalid_request", "requested_token_type %q is not %s: this server exchanges ID tokens for ID-JAGs only", form.Get("requested_token_type"), tokenTypeIDJAG)
	case form.Get("subject_token_type") != tokenTypeIDToken:
		return nil, nil, errf("invalid_request", "subject_token_type %q is not %s", form.Get("subject_token_type"), tokenTypeIDToken)
	case form.Get("subject_token") == "":
		return nil, nil, errf("invalid_request", "subject_token is missing (RFC 8693 §2.1)")
	case form.Get("audience") == "":
		return nil, nil, errf("invalid_request", "audience is missing: name the authorization server's issuer")
	case form.Get("resource") == "":
		return nil, nil, errf("invalid_request", "resource is missing: the enterprise-managed authorization profile requires it")
	}
	if e := s.checkResource(form.Get("resource")); e != nil {
		return nil, nil, e
	}
	idc, e := s.verifyOwnIDToken(form.Get("subject_token"), c.ID, now)
	if e != nil {
		return nil, nil, e
	}
	aud := form.Get("audience")
	i := slices.IndexFunc(ij.Access, func(a IDJAGAccess) bool { return a.Audience == aud })
	if i < 0 {
		return nil, nil, errf("invalid_target", "audience %q is not an authorization server this enterprise has connected", aud)
	}
	acc := ij.Access[i]
	if acc.Users != nil && !slices.Contains(acc.Users, idc.Subject) {
		return nil, nil, errf("access_denied", "user %s is not assigned to %s", idc.Subject, aud)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ij.Key}, (&jose.SignerOptions{}).WithType(typIDJAG))
	if err != nil {
		return nil, nil, errf("server_error", "signing the ID-JAG: %v", err)
	}
	jti := randomID()
	raw, err := jwt.Signed(sig).Claims(idjagClaims{
		Claims: jwt.Claims{Issuer: s.issuer, Subject: idc.Subject, Audience: jwt.Audience{aud}, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(idjagTTL))},
		ClientID: acc.ClientID, Resource: form.Get("resource"), Email: idc.Email,
	}).Serialize()
	if err != nil {
		return nil, nil, errf("server_error", "signing the ID-JAG: %v", err)
	}
	return &tokenResponse{AccessToken: raw, TokenType: "N_A", ExpiresIn: int64(idjagTTL / time.Second), IssuedTokenType: tokenTypeIDJAG},
		&issued{jti: jti, sub: idc.Subject, aud: aud}, nil
}

// verifyOwnIDToken checks that raw is an ID token this server signed
// (with any of its published keys), for client, not expired.
func (s *Server) verifyOwnIDToken(raw, client string, now time.Time) (*idClaims, *oauthError) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, errf("invalid_grant", "subject_token is not a signed JWT: %v", err)
	}
	k := s.keyByID(tok.Headers[0].KeyID)
	if k == nil {
		return nil, errf("invalid_grant", "subject_token was not signed by this identity provider (unknown kid %q)", tok.Headers[0].KeyID)
	}
	var c idClaims
	if err := tok.Claims(k.public.Key, &c); err != nil {
		return nil, errf("invalid_grant", "subject_token's signature does not verify")
	}
	switch {
	case c.Issuer != s.issuer:
		return nil, errf("invalid_grant", "subject_token's iss %q is not this identity provider", c.Issuer)
	case !slices.Contains(c.Audience, client):
		return nil, errf("invalid_grant", "subject_token was issued to %q, not to the client %q that presents it", []string(c.Audience), client)
	case c.Expiry == nil || now.After(c.Expiry.Time().Add(assertionLeeway)):
		return nil, errf("invalid_grant", "subject_token has expired")
	case c.Subject == "":
		return nil, errf("invalid_grant", "subject_token has no sub")
	}
	return &c, nil
}

// grantIDJAG issues an access token for an ID-JAG presented with the JWT
// bearer grant (RFC 7523 §2.1) by the authenticated client c. Strict: typ
// oauth-id-jag+jwt, signed by a trusted enterprise identity provider,
// aud this server's issuer, client_id the authenticating client, not
// expired, with a sub; a resource in the request must be the ID-JAG's.
// No refresh token: the client asks the identity provider again.
func (s *Server) grantIDJAG(form url.Values, c *clientInfo, jkt string, now time.Time) (*tokenResponse, *issued, *oauthError) {
	tok, oe := parseAssertion(form)
	if oe != nil {
		return nil, nil, oe
	}
	if typ, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); typ != typIDJAG {
		return nil, nil, errf("invalid_grant", "the assertion's typ is %q, not %s: present an ID-JAG", typ, typIDJAG)
	}
	var unverified idjagClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, nil, errf("invalid_grant", "the assertion has no readable claims: %v", err)
	}
	key, ok := s.idjagIssuers[unverified.Issuer]
	if !ok {
		return nil, nil, errf("invalid_grant", "the ID-JAG's iss %q is not an identity provider this server trusts", unverified.Issuer)
	}
	var cl idjagClaims
	if err := tok.Claims(key, &cl); err != nil {
		return nil, nil, errf("invalid_grant", "the ID-JAG's signature does not verify with the key of %s", unverified.Issuer)
	}
	switch {
	case !slices.ContainsFunc(cl.Audience, func(a string) bool { return a == s.issuer || a == s.issuer+"/" }):
		return nil, nil, errf("invalid_grant", "the ID-JAG's aud %q does not name this server (%s)", []string(cl.Audience), s.issuer)
	case cl.ClientID != c.ID:
		return nil, nil, errf("invalid_grant", "the ID-JAG was issued for client %q, but %q presents it", cl.ClientID, c.ID)
	case cl.Expiry == nil:
		return nil, nil, errf("invalid_grant", "the ID-JAG has no exp")
	case now.After(cl.Expiry.Time().Add(assertionLeeway)):
		return nil, nil, errf("invalid_grant", "the ID-JAG expired at %s", cl.Expiry.Time().UTC().Format(time.RFC3339))
	case cl.Subject == "":
		return nil, nil, errf("invalid_grant", "the ID-JAG has no sub")
	}
	resource := cl.Resource
	if res, ok := form["resource"]; ok {
		if cl.Resource != "" && res[0] != cl.Resource {
			return nil, nil, errf("invalid_target", "resource %q is not the ID-JAG's %q", res[0], cl.Resource)
		}
		resource = res[0]
	}
	if resource != "" {
		if e := s.checkResource(resource); e != nil {
			return nil, nil, e
		}
	}
	scopes, e := s.parseScopes(form.Get("scope"))
	if e != nil {
		return nil, nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.sweep(now, s.Settings().RefreshTokenTTL)
	famID := randomID()
	client := *c
	client.NoRefresh = true
	fam := &family{client: &client, sub: cl.Subject, resource: resource, scopes: scopes, jkt: jkt}
	resp, iss, oe := s.issueLocked(famID, fam, scopes, "", now)
	if oe != nil {
		return nil, nil, oe
	}
	s.st.families[famID] = fam
	return resp, iss, nil
}

// idjagTrust maps the trusted enterprise identity providers to their keys.
func idjagTrust(issuers []WorkloadIssuer) (map[string]crypto.PublicKey, bool) {
	m := map[string]crypto.PublicKey{}
	for _, wi := range issuers {
		if _, err := assertionAlgorithm(wi.PublicKey); err != nil || wi.Issuer == "" {
			return nil, false
		}
		m[wi.Issuer] = wi.PublicKey
	}
	return m, true
}

// IDJAGKeyFlag is the value of cmd/mockas's -id-jag-key flag for key: its
// PKCS #8 DER in base64url.
func IDJAGKeyFlag(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(der), nil
}

// ParseIDJAGKeyFlag parses -id-jag-key: an EC P-256 private key, PKCS #8
// DER in base64url.
func ParseIDJAGKeyFlag(v string) (*ecdsa.PrivateKey, error) {
	der, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("the ID-JAG key is not base64url: %v", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("the ID-JAG key is not a PKCS #8 private key: %v", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the ID-JAG key must be EC P-256 (ES256)")
	}
	return ec, nil
}

// IDJAGAccessFlag is the value of cmd/mockas's -id-jag-access flag for a:
// AUDIENCE=CLIENT_ID[,USER...].
func IDJAGAccessFlag(a IDJAGAccess) string {
	return strings.Join(append([]string{a.Audience + "=" + a.ClientID}, a.Users...), ",")
}

// ParseIDJAGAccessFlag parses -id-jag-access: AUDIENCE=CLIENT_ID, then
// the users who may reach it (none listed: every user).
func ParseIDJAGAccessFlag(v string) (IDJAGAccess, error) {
	parts := strings.Split(v, ",")
	aud, client, ok := strings.Cut(parts[0], "=")
	if !ok || aud == "" || client == "" {
		return IDJAGAccess{}, fmt.Errorf("ID-JAG access %q is not AUDIENCE=CLIENT_ID[,USER...]", v)
	}
	a := IDJAGAccess{Audience: aud, ClientID: client}
	if len(parts) > 1 {
		a.Users = parts[1:]
	}
	return a, nil
}
