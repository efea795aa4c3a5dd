// Package dpopcheck verifies DPoP proofs (RFC 9449 §4.2, §4.3) for the test
// doubles: the remote authorization server (mockas) at its token endpoint and
// the remote MCP server (mockmcp) on every request. It is written apart from
// the proxy's own DPoP code on purpose, so a double never agrees with the
// proxy merely because both share a mistake.
//
// Each refusal is an [*Error] whose Code is the OAuth error code to answer
// (invalid_dpop_proof or use_dpop_nonce) and whose Description says what was
// wrong; the doubles send it as error_description.
package dpopcheck

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The error codes of RFC 9449.
const (
	// CodeInvalidProof is §5 and §7.1's invalid_dpop_proof.
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce is §8 and §9's use_dpop_nonce: the server requires a
	// nonce the proof did not carry.
	CodeUseNonce = "use_dpop_nonce"
)

// DefaultWindow is how far a proof's iat may be from the server's clock when
// Verifier.Window is zero: the doubles run on other clocks than the proxy in
// the container stack, and RFC 9449 §11.1 leaves the window to the server.
const DefaultWindow = 60 * time.Second

// HeaderType is the typ header parameter of a DPoP proof (RFC 9449 §4.2).
const HeaderType = "dpop+jwt"

// Error is a refused proof.
type Error struct {
	// Code is CodeInvalidProof or CodeUseNonce.
	Code string
	// Description says what was wrong, fit for error_description.
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// Proof is what a verified proof says.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url
	// without padding: what a bound token's cnf.jkt names (RFC 9449 §6.1).
	JKT string
	// JTI is the proof's unique identifier.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the nonce the proof carried, "" when none.
	Nonce string
	// Ath reports whether the proof carried an ath claim.
	Ath bool
}

// Request is what a proof must match: the HTTP request it came with and
// what the server expects of it.
type Request struct {
	// Method is the request's method, which htm must equal.
	Method string
	// URL is the request's URL as this server is reached (scheme, host and
	// path; a query or fragment is ignored), which htu must equal.
	URL string
	// AccessToken, when not empty, is the access token presented with the
	// proof: ath must be its hash (RFC 9449 §4.3 step 11). At a token
	// endpoint it is empty and ath is ignored.
	AccessToken string
	// Nonce, when not empty, is the nonce the server currently requires.
	Nonce string
}

// Verifier checks proofs. The zero value checks ES256 proofs within
// DefaultWindow of the wall clock, without a replay check.
type Verifier struct {
	// Algs are the accepted signature algorithms; nil means ES256 only,
	// what the doubles advertise. Symmetric algorithms and none are
	// refused whatever this says.
	Algs []jose.SignatureAlgorithm
	// Window is how far iat may be before or after now; zero means
	// DefaultWindow.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replay, when set, refuses a proof whose jti it has seen.
	Replay *ReplayCache
}

func (v *Verifier) algs() []jose.SignatureAlgorithm {
	if v.Algs == nil {
		return []jose.SignatureAlgorithm{jose.ES256}
	}
	return v.Algs
}

func (v *Verifier) window() time.Duration {
	if v.Window == 0 {
		return DefaultWindow
	}
	return v.Window
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// header is the part of a proof's JOSE header the checks read.
type header struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
}

// claims are a proof's claims (RFC 9449 §4.2). Pointers tell an absent
// claim from an empty one.
type claims struct {
	JTI   *string  `json:"jti"`
	HTM   *string  `json:"htm"`
	HTU   *string  `json:"htu"`
	IAT   *float64 `json:"iat"`
	Ath   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// privateMembers are the JWK members that only a private or symmetric key
// has (RFC 7518 §6.2.2, §6.3.2, §6.4).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Verify checks the DPoP header of h against r, in the order of RFC 9449
// §4.3, then the replay cache, then the nonce. On an error raised after the
// signature verified, the proof is returned as well, so that a caller can
// record whose key sent it.
func (v *Verifier) Verify(h http.Header, r Request) (*Proof, error) {
	vals := h.Values("DPoP")
	switch {
	case len(vals) == 0:
		return nil, invalid("the request carries no DPoP header")
	case len(vals) > 1:
		return nil, invalid("the request carries %d DPoP headers; RFC 9449 section 4.3 allows exactly one", len(vals))
	}
	jws, hdr, err := v.parse(vals[0])
	if err != nil {
		return nil, err
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(hdr.JWK); err != nil {
		return nil, invalid("the proof's jwk header is not a JSON Web Key: %s", trimJose(err))
	}
	payload, err := jws.Verify(&key)
	if err != nil {
		return nil, invalid("the proof's signature does not verify with the jwk of its header")
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalid("the proof's jwk has no RFC 7638 thumbprint: %s", trimJose(err))
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("the proof's claims are malformed: %v", err)
	}
	p := &Proof{JKT: base64.RawURLEncoding.EncodeToString(tp)}
	if err := v.checkClaims(&c, r, p); err != nil {
		return p, err
	}
	if v.Replay != nil && !v.Replay.Remember(p.JTI, v.now().Add(2*v.window())) {
		return p, invalid("the proof was used before")
	}
	if r.Nonce != "" && p.Nonce != r.Nonce {
		if p.Nonce == "" {
			return p, &Error{Code: CodeUseNonce, Description: "this server requires a DPoP nonce: send the proof again with the nonce of the DPoP-Nonce header"}
		}
		return p, &Error{Code: CodeUseNonce, Description: "the proof's nonce is not the current one: send the proof again with the nonce of the DPoP-Nonce header"}
	}
	return p, nil
}

// parse reads the compact JWS and checks its header: typ, an asymmetric
// accepted alg, and a public jwk.
func (v *Verifier) parse(raw string) (*jose.JSONWebSignature, *header, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, invalid("the DPoP header is not a JWS in compact serialization: want three base64url parts separated by dots, got %d", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr header
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return nil, nil, invalid("the proof's JOSE header is not base64url-encoded JSON")
	}
	switch {
	case hdr.Typ != HeaderType:
		return nil, nil, invalid("the proof's typ is %s, not %s (RFC 9449 section 4.2)", quote(hdr.Typ), HeaderType)
	case hdr.Alg == "" || strings.EqualFold(hdr.Alg, "none") || strings.HasPrefix(strings.ToUpper(hdr.Alg), "HS"):
		return nil, nil, invalid("the proof's alg is %s: a DPoP proof must be signed with an asymmetric key (RFC 9449 section 4.2)", quote(hdr.Alg))
	case !slices.Contains(v.algs(), jose.SignatureAlgorithm(hdr.Alg)):
		return nil, nil, invalid("the proof's alg %s is not one this server accepts (%s)", hdr.Alg, algNames(v.algs()))
	case len(hdr.JWK) == 0 || string(hdr.JWK) == "null":
		return nil, nil, invalid("the proof has no jwk header: it must carry its public key (RFC 9449 section 4.2)")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(hdr.JWK, &members); err != nil {
		return nil, nil, invalid("the proof's jwk header is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, nil, invalid("the proof's jwk carries the private member '%s': it must be a public key (RFC 9449 section 4.2)", m)
		}
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs())
	if err != nil {
		return nil, nil, invalid("the proof is not a valid JWS: %s", trimJose(err))
	}
	return jws, &hdr, nil
}

// checkClaims checks the claims against r and fills p.
func (v *Verifier) checkClaims(c *claims, r Request, p *Proof) error {
	switch {
	case c.JTI == nil || *c.JTI == "":
		return invalid("the proof has no jti")
	case c.HTM == nil:
		return invalid("the proof has no htm")
	case c.HTU == nil:
		return invalid("the proof has no htu")
	case c.IAT == nil:
		return invalid("the proof has no iat")
	}
	p.JTI = *c.JTI
	sec, frac := math.Modf(*c.IAT)
	p.IssuedAt = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	if c.Nonce != nil {
		p.Nonce = *c.Nonce
	}
	p.Ath = c.Ath != nil
	if *c.HTM != r.Method {
		return invalid("the proof's htm %s is not the request's method %s", quote(*c.HTM), r.Method)
	}
	if err := matchHTU(*c.HTU, r.URL); err != nil {
		return err
	}
	now, w := v.now(), v.window()
	if d := p.IssuedAt.Sub(now); d > w || d < -w {
		return invalid("the proof's iat %s is more than %s from now (%s)", stamp(p.IssuedAt), w, stamp(now))
	}
	if r.AccessToken == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(r.AccessToken))
	switch want := base64.RawURLEncoding.EncodeToString(sum[:]); {
	case c.Ath == nil:
		return invalid("the proof has no ath, and it came with an access token (RFC 9449 section 4.3)")
	case *c.Ath != want:
		return invalid("the proof's ath is not the hash of the access token it came with")
	}
	return nil
}

// matchHTU compares a proof's htu with the request's URL: scheme and host
// case-insensitively, a default port left out, the path exactly; the
// request's query and fragment are ignored (RFC 9449 §4.3 step 9).
func matchHTU(htu, requestURL string) error {
	if strings.ContainsAny(htu, "?#") {
		return invalid("the proof's htu %s has a query or a fragment; RFC 9449 section 4.2 wants the URI without them", htu)
	}
	got, err := url.Parse(htu)
	if err != nil || got.Scheme == "" || got.Host == "" {
		return invalid("the proof's htu %s is not an absolute URI", quote(htu))
	}
	want, err := url.Parse(requestURL)
	if err != nil {
		return invalid("the request URL %s cannot be parsed", requestURL)
	}
	if normalURL(got) != normalURL(want) {
		return invalid("the proof's htu %s is not the request's URI %s", htu, normalURL(want))
	}
	return nil
}

// normalURL is u's scheme, host and path in the form htu is compared in.
func normalURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch {
	case scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

func algNames(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// quote names a value in an error_description, which cannot carry double
// quotes.
func quote(s string) string {
	if s == "" {
		return "(absent)"
	}
	return "'" + s + "'"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func trimJose(err error) string { return strings.TrimPrefix(err.Error(), "go-jose/go-jose: ") }
