package login

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// maxClaims bounds the claims kept of one sign-in, as JSON: every grant of
// the user carries them. Past it only the claims the proxy reads itself
// are kept.
const maxClaims = 16 << 10

// Identity makes the user of a sign-in from its claims (the ID token's,
// with sub): email counts only with email_verified, groups come from the
// groups claim.
func (p *Provider) Identity(claims map[string]any) *request.Identity {
	subject, _ := claims["sub"].(string)
	id := &request.Identity{Subject: subject, SignedIn: p.now(), Source: p.Source(), Claims: claims}
	id.Email, _ = claims["email"].(string)
	id.EmailVerified, _ = claims["email_verified"].(bool)
	id.Name, _ = claims["name"].(string)
	id.Groups = stringList(claims[p.groupsClaim()])
	if b, err := json.Marshal(claims); err != nil || len(b) > maxClaims {
		kept := map[string]any{}
		for _, k := range []string{"sub", "email", "email_verified", "name", p.groupsClaim()} {
			if v, ok := claims[k]; ok {
				kept[k] = v
			}
		}
		id.Claims = kept
	}
	return id
}

// Source names the settings claims are obtained under: the issuer, the
// scopes and the groups claim. Claims of a sign-in under other settings
// (before the operator added the groups scope, say) are not used by a
// policy.
func (p *Provider) Source() string {
	scopes := slices.Clone(p.Scopes)
	slices.Sort(scopes)
	sum := sha256.Sum256([]byte(p.Issuer + "\x00" + strings.Join(scopes, " ") + "\x00" + p.groupsClaim()))
	return hex.EncodeToString(sum[:8])
}

// stringList reads a groups claim: a list of strings, or one string.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
