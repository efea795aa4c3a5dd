package tokens

import (
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// DPoP-bound tokens (RFC 9449): a grant that asks for them sends every
// token request with a proof of the key the token will be bound to, and
// the token keeps its key (sealed, as the token is) for as long as it and
// its refresh token live. Nonces the remote servers hand out are shared by
// the route's token requests and forwarded requests.

// Nonces are the route's DPoP nonces, by origin.
func (s *Source) Nonces() *dpop.Nonces { return &s.nonces }

// ProofKey is the key of a token request of g: the key of the token being
// renewed (keep) when it has one, a new key when g asks for DPoP-bound
// tokens, nil when it does not.
func (s *Source) ProofKey(g *upstream.Grant, keep []byte) (*dpop.Key, *apierror.Error) {
	if len(keep) > 0 {
		if k, err := dpop.ParseKey(keep); err == nil {
			return k, nil
		}
	}
	if !g.DPoP {
		return nil, nil
	}
	k, err := dpop.NewKey()
	if err != nil {
		return nil, apierror.Wrap(err, apierror.CodeInternal, "The proxy could not make a DPoP key for the remote token; try again.")
	}
	return k, nil
}

// sender is the HTTP client of a token request proving possession of k;
// the proxy's own client when k is nil.
func (s *Source) sender(k *dpop.Key) *http.Client {
	return dpop.Client(s.HTTP, k, &s.nonces, s.Now)
}

// obtained is the upstream token of a token response to a grant the
// route itself runs (client credentials, workload, enterprise) for
// subject under key, bound to k when the server bound it.
func (s *Source) obtained(tok *oauth2.Token, g *upstream.Grant, key, subject string, k *dpop.Key) (*upstream.Token, *apierror.Error) {
	t := &upstream.Token{Key: key, AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry,
		Grant: *g, Subject: subject, Acquired: s.Now(), Issued: s.Now(), Scopes: GrantedScopes(tok, g.Scopes)}
	if e := Bind(t, k, g); e != nil {
		return nil, e
	}
	return t, nil
}

// Bind keeps k with t when the authorization server bound t to it
// (token_type DPoP). A bearer token answered to a grant that requires
// DPoP-bound tokens is refused, and so is a DPoP token the proxy holds no
// key for.
func Bind(t *upstream.Token, k *dpop.Key, g *upstream.Grant) *apierror.Error {
	t.DPoPKey = nil
	dpopToken := strings.EqualFold(t.TokenType, dpop.Scheme)
	switch {
	case dpopToken && k == nil:
		return apierror.New(apierror.CodeUpstreamAuthorization,
			"The remote authorization server %s issued a DPoP-bound token although the proxy sent no DPoP proof. Set upstream_oauth2.dpop: auto or required on the route.", ASName(g))
	case dpopToken:
		t.DPoPKey = k.Bytes()
	case g.DPoPRequired:
		return apierror.New(apierror.CodeUpstreamAuthorization,
			"The remote authorization server %s issued a bearer token, but the route requires DPoP-bound tokens (upstream_oauth2.dpop: required). Check that the server supports DPoP (RFC 9449), or set dpop: auto to accept bearer tokens.", ASName(g))
	}
	return nil
}
