package authserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// RefreshTokenPrefix starts every refresh token the proxy issues.
const RefreshTokenPrefix = "mcpp_rt_"

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	RequestID   string `json:"request_id"`
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token is the downstream token endpoint: authorization_code with PKCE and
// refresh_token with rotation. Clients authenticate as their metadata
// document said when they were authorized: public clients (none) with PKCE
// alone, private_key_jwt clients with an RFC 7523 assertion on both grants
// too. A refused request stores nothing and consumes nothing but the
// single-use code or refresh token it presented. Refusals are OAuth error
// bodies (RFC 6749 §5.2) with the request id.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return apierror.MethodNotAllowed(r, http.MethodPost)
	}
	fail := func(status int, code, desc string) error {
		s.o.Log.Info("token request refused", s.logAttrs(r.Context(), event.TokenRequestRefused.Attr(),
			slog.String("error_code", code), slog.String("description", desc))...)
		pages.JSON(w, status, "no-store", tokenError{Error: code, Description: desc, RequestID: apierror.RequestID(r.Context())})
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return fail(http.StatusBadRequest, "invalid_request", "the request body is not a form: "+err.Error())
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok && clientID == "" {
		// A public client may send its id as HTTP Basic with an empty
		// secret (golang.org/x/oauth2 tries that first).
		if pass != "" {
			return fail(http.StatusUnauthorized, "invalid_client", "the proxy takes no client secret: a public client sends none, a private_key_jwt client sends a client_assertion")
		}
		clientID, _ = url.QueryUnescape(user)
	}
	if clientID == "" {
		clientID = assertionClientID(f)
	}
	if gone, err := s.registrationGone(r.Context(), clientID); err != nil {
		return storageError(err)
	} else if gone != "" {
		return fail(http.StatusUnauthorized, "invalid_client", gone)
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		return s.redeemCode(w, r, f, clientID, fail)
	case "refresh_token":
		return s.redeemRefresh(w, r, f, clientID, fail)
	case "":
		return fail(http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		return fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

type refuse func(status int, code, desc string) error

// bindingChanged refuses a code or refresh token whose grant was made under
// another upstream_token_binding than the route's.
const bindingChanged = "the route's upstream_token_binding changed since this was issued; authorize again"

func (s *Server) redeemCode(w http.ResponseWriter, r *http.Request, f url.Values, clientID string, fail refuse) error {
	// Checks read the code; only a request that passes them consumes it,
	// so a malformed request does not destroy a good code.
	key := store.SecretKey(f.Get("code"))
	c, err := s.codes.Get(r.Context(), key)
	if err != nil {
		return storageError(err)
	}
	switch {
	case c == nil || !s.o.Now().Before(c.Expires):
		return fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, already used or expired")
	case c.Request.Route != s.route:
		return fail(http.StatusBadRequest, "invalid_grant", "the code was issued for another host")
	case clientID != c.Request.ClientID:
		return fail(http.StatusBadRequest, "invalid_grant", "the code was issued to another client_id")
	case !binding.OfRoute(c.BindingKey, s.binding, s.route):
		return fail(http.StatusBadRequest, "invalid_grant", bindingChanged)
	}
	if err := s.authenticateClient(r.Context(), f, clientID, c.Request.ClientAuth); err != nil {
		return clientFailure(err, fail)
	}
	switch {
	case f.Get("redirect_uri") != c.Request.RedirectURI:
		return fail(http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the one in the authorization request")
	case !pkceMatches(f.Get("code_verifier"), c.Request.CodeChallenge):
		return fail(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
	}
	if res := f.Get("resource"); res != "" && res != c.Request.Resource {
		return fail(http.StatusBadRequest, "invalid_target", "resource differs from the one in the authorization request")
	}
	if taken, err := s.codes.Take(r.Context(), key); err != nil || taken == nil {
		return fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, already used or expired")
	}
	return s.issueTokens(w, r, &request.Grant{
		ID:         store.NewSecret(16),
		Route:      s.route,
		Subject:    c.Subject,
		Identity:   c.Identity,
		ClientID:   c.Request.ClientID,
		Resource:   c.Request.Resource,
		Scope:      c.Request.Scope,
		BindingKey: c.BindingKey,
		Upstream:   c.Request.Upstream,
		Created:    s.o.Now(),
	}, c.Request.ClientAuth)
}

func (s *Server) redeemRefresh(w http.ResponseWriter, r *http.Request, f url.Values, clientID string, fail refuse) error {
	key := store.SecretKey(f.Get("refresh_token"))
	old, err := s.refresh.Get(r.Context(), key)
	if err != nil {
		return storageError(err)
	}
	switch {
	case old == nil || !s.o.Now().Before(old.Expires):
		return fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, already used or expired")
	case old.Grant.Route != s.route || clientID != old.Grant.ClientID:
		return fail(http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client or host")
	case !binding.OfRoute(old.Grant.BindingKey, s.binding, s.route):
		// Its grant would be refused on every request: the client must
		// authorize again, under the route's current binding.
		return fail(http.StatusBadRequest, "invalid_grant", bindingChanged)
	case s.o.Policy != nil && !s.o.Policy.Fresh(old.Grant.User()):
		return fail(http.StatusBadRequest, "invalid_grant", "the route's access policy decides on a sign-in within identity_provider.claims_max_age; authorize again")
	case s.o.Policy != nil && !s.o.Policy.Route(old.Grant.User()).Allowed:
		return fail(http.StatusBadRequest, "invalid_grant", "the route's access policy no longer gives the user this server; authorize again to see why")
	}
	if err := s.authenticateClient(r.Context(), f, clientID, old.ClientAuth); err != nil {
		return clientFailure(err, fail)
	}
	if taken, err := s.refresh.Take(r.Context(), key); err != nil || taken == nil {
		return fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, already used or expired")
	}
	return s.issueTokens(w, r, old.Grant, old.ClientAuth)
}

// clientFailure answers a failed client authentication: invalid_client
// (RFC 6749 §5.2) with what was wrong, or a storage failure.
func clientFailure(err error, fail refuse) error {
	var ce errClient
	if errors.As(err, &ce) {
		return fail(http.StatusUnauthorized, "invalid_client", ce.Error())
	}
	return storageError(err)
}

func (s *Server) issueTokens(w http.ResponseWriter, r *http.Request, g *request.Grant, clientAuth string) error {
	ctx := r.Context()
	if err := s.clientUsed(ctx, g.ClientID); err != nil {
		return storageError(err)
	}
	access, err := s.o.Access.Issue(ctx, g, AccessTokenTTL)
	if err != nil {
		return storageError(err)
	}
	refresh := RefreshTokenPrefix + store.NewSecret(32)
	exp := s.o.Now().Add(RefreshTokenTTL)
	if err := s.refresh.Put(ctx, store.SecretKey(refresh), &RefreshToken{Grant: g, Expires: exp, ClientAuth: clientAuth}, exp); err != nil {
		return storageError(err)
	}
	pages.JSON(w, http.StatusOK, "no-store", tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(AccessTokenTTL.Seconds()),
		RefreshToken: refresh,
		Scope:        g.Scope,
	})
	return nil
}

// pkceMatches checks an S256 code verifier (RFC 7636 §4.6).
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || strings.ContainsFunc(verifier, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r))
	}) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}
