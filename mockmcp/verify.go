package mockmcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// clockSkew is the tolerance on exp, nbf and iat: the AS and this server run
// on different clocks in the container stack.
const clockSkew = 30 * time.Second

// allowedAlgs are the JWS algorithms a token may use. "none" and the HMAC
// family are never accepted: a resource server holds no shared secret, and
// accepting HS256 with a public key as the secret is a classic forgery.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256}

// tokenError is a token that was refused: 401 error="invalid_token" with
// Description as error_description (RFC 6750 §3.1).
type tokenError struct{ Description string }

func (e *tokenError) Error() string { return "invalid_token: " + e.Description }

func invalid(format string, args ...any) error {
	return &tokenError{Description: fmt.Sprintf(format, args...)}
}

// Identity is what a verified access token says (RFC 9068 §2.2).
type Identity struct {
	Issuer    string
	Subject   string
	Audience  []string
	ClientID  string
	TokenID   string
	Scopes    []string
	ExpiresAt time.Time
	// JKT is the thumbprint of the DPoP key the token is bound to (cnf.jkt,
	// RFC 9449 §6.1); "" for an unbound token.
	JKT string
	// Fingerprint is control.Fingerprint of the token.
	Fingerprint string
}

// hasScopes reports whether every scope in want was granted.
func (id *Identity) hasScopes(want []string) bool {
	for _, s := range want {
		if !slices.Contains(id.Scopes, s) {
			return false
		}
	}
	return true
}

// accessTokenClaims are the RFC 9068 claims beyond the registered ones.
type accessTokenClaims struct {
	ClientID string `json:"client_id"`
	// Scope is a space-separated list (RFC 9068 §2.2.3, RFC 8693 §4.2).
	Scope *string `json:"scope"`
	// Scp is the array Ory Hydra puts its scopes in; read only for an
	// external issuer.
	Scp []string `json:"scp"`
	// Cnf names the key a DPoP-bound token is bound to (RFC 9449 §6.1).
	Cnf *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// rawPayload keeps the verified claims set as bytes, so that a malformed
// claim is reported as such and not as a bad signature.
type rawPayload []byte

func (p *rawPayload) UnmarshalJSON(b []byte) error {
	*p = append((*p)[:0], b...)
	return nil
}

// verifier checks JWT access tokens per RFC 9068 and RFC 6750.
type verifier struct {
	issuers map[string]*keySource
	// external are issuers that are not mockas (Config.ExternalIssuers):
	// their tokens may be typed "JWT" and carry scopes in "scp".
	external  map[string]bool
	audiences []string // any one of them must be in "aud" (more may be passed to verify)
	now       func() time.Time
}

// verify returns the token's identity, a *tokenError for a token that must
// be refused, or a *keyFetchError when the issuer's keys are unavailable.
// The token's aud must name one of v.audiences or also.
func (v *verifier) verify(ctx context.Context, raw string, also ...string) (*Identity, error) {
	hdr, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, invalid("the token is not a valid JWS compact serialization: %v", trimJoseErr(err))
	}

	// The unverified iss only picks which AS's keys to try; it is trusted
	// once a key of that same AS verifies the signature.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalid("the token's claims are not a JSON object: %v", trimJoseErr(err))
	}
	if unverified.Issuer == "" {
		return nil, invalid("the token has no iss claim")
	}
	external := v.external[unverified.Issuer]
	if !hdr.accessTokenTyp() && !(external && (hdr.Typ == "" || strings.EqualFold(hdr.Typ, "JWT"))) {
		return nil, invalid("typ %s is not at+jwt: not a JWT access token (RFC 9068 section 4)", quoteOrEmpty(hdr.Typ))
	}
	src, ok := v.issuers[unverified.Issuer]
	if !ok {
		return nil, invalid("issuer %s is not an authorization server of this resource (trusted: %s)", unverified.Issuer, strings.Join(v.issuerList(), " "))
	}
	payload, err := verifySignature(ctx, tok, hdr, src)
	if err != nil {
		return nil, err
	}
	var claims jwt.Claims
	var extra accessTokenClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, invalid("the token's registered claims are malformed: %v", err)
	}
	if err := json.Unmarshal(payload, &extra); err != nil {
		return nil, invalid("the token's client_id or scope claim is malformed: %v", err)
	}
	if claims.Issuer != src.issuer {
		// Cannot differ from the unverified read, but never trust that.
		return nil, invalid("issuer %s is not %s", claims.Issuer, src.issuer)
	}
	if err := v.checkClaims(&claims, &extra, append(slices.Clip(v.audiences), also...)); err != nil {
		return nil, err
	}
	return identity(&claims, &extra, external), nil
}

// jwtHeader is the part of a JOSE header the verifier reads.
type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// accessTokenTyp reports whether typ is RFC 9068's at+jwt.
func (h *jwtHeader) accessTokenTyp() bool {
	switch strings.ToLower(h.Typ) {
	case "at+jwt", "application/at+jwt":
		return true
	}
	return false
}

// parseHeader reads the JOSE header of raw, which must be a signed JWT in
// compact form, with an accepted alg and no critical parameters.
func parseHeader(raw string) (*jwtHeader, error) {
	parts := strings.Split(raw, ".")
	switch {
	case len(parts) == 5:
		return nil, invalid("the token is an encrypted JWT (JWE); this server accepts signed JWT access tokens (RFC 9068) only")
	case len(parts) != 3:
		return nil, invalid("the token is not a JWT: want three base64url parts separated by dots (RFC 7519), got %d part(s)", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr jwtHeader
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return nil, invalid("the token's JOSE header is not base64url-encoded JSON")
	}
	if !slices.Contains(allowedAlgs, jose.SignatureAlgorithm(hdr.Alg)) {
		return nil, invalid("alg %s is not accepted; this server accepts %s", quoteOrEmpty(hdr.Alg), algList())
	}
	if len(hdr.Crit) > 0 {
		return nil, invalid("critical header parameters %v are not understood (RFC 7515 section 4.1.11)", hdr.Crit)
	}
	return &hdr, nil
}

// verifySignature finds the issuer's keys the header names and returns the
// claims set once one of them verifies the signature.
func verifySignature(ctx context.Context, tok *jwt.JSONWebToken, hdr *jwtHeader, src *keySource) (rawPayload, error) {
	keys, err := src.lookup(ctx, hdr.Kid)
	if errors.Is(err, errUnknownKey) {
		if hdr.Kid == "" {
			return nil, invalid("the token has no kid and the JWKS of %s has no keys", src.issuer)
		}
		return nil, invalid("no key with kid %s in the JWKS of %s", hdr.Kid, src.issuer)
	}
	if err != nil {
		return nil, err
	}
	var payload rawPayload
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != hdr.Alg {
			continue
		}
		if err := tok.Claims(key.Key, &payload); err == nil {
			return payload, nil
		}
	}
	if hdr.Kid == "" {
		return nil, invalid("the signature does not verify with any %s key of %s (the token has no kid)", hdr.Alg, src.issuer)
	}
	return nil, invalid("the signature does not verify with the %s key %s of %s", hdr.Alg, hdr.Kid, src.issuer)
}

// identity is what the verified claims say; an external issuer's scopes
// may come in scp.
func identity(claims *jwt.Claims, extra *accessTokenClaims, external bool) *Identity {
	id := &Identity{
		Issuer:    claims.Issuer,
		Subject:   claims.Subject,
		Audience:  []string(claims.Audience),
		ClientID:  extra.ClientID,
		TokenID:   claims.ID,
		Scopes:    []string{},
		ExpiresAt: claims.Expiry.Time(),
	}
	if extra.Cnf != nil {
		id.JKT = extra.Cnf.JKT
	}
	if extra.Scope != nil {
		id.Scopes = strings.Fields(*extra.Scope)
	} else if external && extra.Scp != nil {
		id.Scopes = slices.Clone(extra.Scp)
	}
	return id
}

// checkClaims checks audience, validity window and the claims RFC 9068 §2.2
// requires.
func (v *verifier) checkClaims(c *jwt.Claims, extra *accessTokenClaims, audiences []string) error {
	audOK := false
	for _, want := range audiences {
		if c.Audience.Contains(want) {
			audOK = true
			break
		}
	}
	if !audOK {
		return invalid("audience [%s] does not include this resource %s (RFC 8707, RFC 9068 section 4)", strings.Join(c.Audience, " "), strings.Join(audiences, " or "))
	}
	now := v.now()
	if c.Expiry == nil {
		return invalid("the token has no exp claim (RFC 9068 section 2.2)")
	}
	if exp := c.Expiry.Time(); now.After(exp.Add(clockSkew)) {
		return invalid("the token expired at %s (now %s, allowed clock skew %s)", stamp(exp), stamp(now), clockSkew)
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(clockSkew).Before(nbf) {
			return invalid("the token is not valid before %s (now %s, allowed clock skew %s)", stamp(nbf), stamp(now), clockSkew)
		}
	}
	if c.IssuedAt == nil {
		return invalid("the token has no iat claim (RFC 9068 section 2.2)")
	}
	if iat := c.IssuedAt.Time(); now.Add(clockSkew).Before(iat) {
		return invalid("the token was issued in the future, at %s (now %s, allowed clock skew %s)", stamp(iat), stamp(now), clockSkew)
	}
	switch {
	case c.Subject == "":
		return invalid("the token has no sub claim (RFC 9068 section 2.2)")
	case extra.ClientID == "":
		return invalid("the token has no client_id claim (RFC 9068 section 2.2)")
	case c.ID == "":
		return invalid("the token has no jti claim (RFC 9068 section 2.2)")
	}
	return nil
}

func (v *verifier) issuerList() []string {
	out := make([]string, 0, len(v.issuers))
	for iss := range v.issuers {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func algList() string {
	names := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// quoteOrEmpty names a header value without double quotes, which a
// challenge's error_description cannot carry.
func quoteOrEmpty(s string) string {
	if s == "" {
		return "(absent)"
	}
	return "'" + s + "'"
}

func trimJoseErr(err error) string {
	return strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
}
