package upstream

import (
	"slices"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
)

// Token is a token a remote authorization server issued, with the grant
// that renews it, as the proxy stores it under its binding key.
type Token struct {
	Key          string
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero: the server did not say
	Grant        Grant
	Subject      string // the user the token was acquired for
	Client       string // the MCP client whose authorization acquired it
	Acquired     time.Time
	// Issued is when the current access token was issued (acquired or
	// last refreshed); with Expiry it gives the token's life.
	Issued time.Time
	// Scopes were granted (the token response's scope, else those asked for).
	Scopes []string
	// NeedScopes are the scopes the remote server asked for in a 403
	// insufficient_scope challenge; the next authorization asks for them.
	NeedScopes []string
	// StepUps counts insufficient_scope challenges since the last answer
	// that was not one; it bounds the step-up loop.
	StepUps int
	// DPoPKey is the key a DPoP-bound token is bound to (dpop.Key.Bytes),
	// kept sealed with the token for as long as it and its refresh token
	// live; nil for a bearer token.
	DPoPKey []byte `json:",omitempty"`
}

// Bound reports whether the token is DPoP-bound: presented with the DPoP
// scheme and a proof of its key on every request.
func (t *Token) Bound() bool {
	return len(t.DPoPKey) > 0 && strings.EqualFold(t.TokenType, dpop.Scheme)
}

// NeedsMoreScope reports whether the remote server asked for scopes the
// token does not have.
func (t *Token) NeedsMoreScope() bool {
	for _, s := range t.NeedScopes {
		if !slices.Contains(t.Scopes, s) {
			return true
		}
	}
	return false
}
