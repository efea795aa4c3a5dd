package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

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
// refresh_token with rotation. Public clients only (token_endpoint_auth_method
// none); a refused request stores nothing and consumes nothing but the
// single-use code or refresh token it presented.
func (rt *route) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	fail := func(status int, code, desc string) {
		rt.log.Info("token request refused", slog.String("event", "token_request_refused"), slog.String("error_code", code),
			slog.String("description", desc), slog.String("request_id", apierror.RequestID(r.Context())))
		writeJSON(w, status, "no-store", tokenError{Error: code, Description: desc, RequestID: apierror.RequestID(r.Context())})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "the request body is not a form: "+err.Error())
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok && clientID == "" {
		// A public client may send its id as HTTP Basic with an empty
		// secret (golang.org/x/oauth2 tries that first).
		if pass != "" {
			fail(http.StatusUnauthorized, "invalid_client", "the proxy's clients are public: send no client secret")
			return
		}
		clientID, _ = url.QueryUnescape(user)
	}
	now := rt.p.now()
	switch f.Get("grant_type") {
	case "authorization_code":
		// Checks read the code; only a request that passes them consumes it,
		// so a malformed request does not destroy a good code.
		key := secretKey(f.Get("code"))
		c, err := getRecord[store.Code](r.Context(), rt.p.st, nsCodes, key)
		if err != nil {
			rt.p.storageFailure(w, r, rt, err)
			return
		}
		switch {
		case c == nil || !now.Before(c.Expires):
			fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, already used or expired")
			return
		case c.Request.Route != rt.host:
			fail(http.StatusBadRequest, "invalid_grant", "the code was issued for another host")
			return
		case clientID != c.Request.ClientID:
			fail(http.StatusBadRequest, "invalid_grant", "the code was issued to another client_id")
			return
		case f.Get("redirect_uri") != c.Request.RedirectURI:
			fail(http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the one in the authorization request")
			return
		case !pkceMatches(f.Get("code_verifier"), c.Request.CodeChallenge):
			fail(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
			return
		}
		if res := f.Get("resource"); res != "" && res != c.Request.Resource {
			fail(http.StatusBadRequest, "invalid_target", "resource differs from the one in the authorization request")
			return
		}
		if taken, err := takeRecord[store.Code](r.Context(), rt.p.st, nsCodes, key); err != nil || taken == nil {
			fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, already used or expired")
			return
		}
		g := &store.Grant{
			ID:         random(16),
			Route:      rt.host,
			Subject:    c.Subject,
			ClientID:   c.Request.ClientID,
			Resource:   c.Request.Resource,
			Scope:      c.Request.Scope,
			BindingKey: c.BindingKey,
			Upstream:   c.Request.Upstream,
			Created:    now,
		}
		rt.issueTokens(w, r, g)
	case "refresh_token":
		key := secretKey(f.Get("refresh_token"))
		old, err := getRecord[store.RefreshToken](r.Context(), rt.p.st, nsRefresh, key)
		if err != nil {
			rt.p.storageFailure(w, r, rt, err)
			return
		}
		switch {
		case old == nil || !now.Before(old.Expires):
			fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, already used or expired")
			return
		case old.Grant.Route != rt.host || clientID != old.Grant.ClientID:
			fail(http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client or host")
			return
		}
		if taken, err := takeRecord[store.RefreshToken](r.Context(), rt.p.st, nsRefresh, key); err != nil || taken == nil {
			fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, already used or expired")
			return
		}
		rt.issueTokens(w, r, old.Grant)
	case "":
		fail(http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (rt *route) issueTokens(w http.ResponseWriter, r *http.Request, g *store.Grant) {
	now := rt.p.now()
	access, refresh := "mcpp_at_"+random(32), "mcpp_rt_"+random(32)
	ctx := r.Context()
	if err := rt.p.st.put(ctx, nsAccess, secretKey(access), &store.AccessToken{Grant: g, Expires: now.Add(AccessTokenTTL)}, now.Add(AccessTokenTTL)); err != nil {
		rt.p.storageFailure(w, r, rt, err)
		return
	}
	if err := rt.p.st.put(ctx, nsRefresh, secretKey(refresh), &store.RefreshToken{Grant: g, Expires: now.Add(RefreshTokenTTL)}, now.Add(RefreshTokenTTL)); err != nil {
		rt.p.storageFailure(w, r, rt, err)
		return
	}
	writeJSON(w, http.StatusOK, "no-store", tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(AccessTokenTTL.Seconds()),
		RefreshToken: refresh,
		Scope:        g.Scope,
	})
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
