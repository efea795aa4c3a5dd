package mockas

import (
	"net/http"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// userinfo is the UserInfo response (OpenID Connect Core §5.3.2).
type userinfo struct {
	Sub               string   `json:"sub"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// handleUserinfo is the UserInfo endpoint (OpenID Connect Core §5.3). The
// access token comes in the Authorization header only (RFC 6750 §2.1; MCP
// forbids tokens in the query) and must carry the openid scope. email
// needs the email scope, name and preferred_username the profile scope.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev := newEvent(r, "userinfo")
	challenge := func(status int, code, desc string) {
		v := `Bearer realm="` + s.issuer + `"`
		if code != "" {
			v += `, error="` + code + `", error_description="` + strings.ReplaceAll(desc, `"`, `'`) + `"`
			ev.Detail["error"], ev.Detail["error_description"] = code, desc
		} else {
			ev.Detail["error_description"] = desc
		}
		w.Header().Set("WWW-Authenticate", v)
		control.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
		s.record(ctx, ev, status)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		s.record(ctx, ev, http.StatusMethodNotAllowed)
		return
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		// RFC 6750 §3.1: no error code when no credentials were sent.
		challenge(http.StatusUnauthorized, "", "no bearer token in the Authorization header")
		return
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		challenge(http.StatusUnauthorized, "invalid_request", "the Authorization header is not a Bearer token")
		return
	}
	ev.Authorization = control.Fingerprint(tok)
	c, err := s.verifyAccess(tok)
	if err != nil {
		challenge(http.StatusUnauthorized, "invalid_token", strings.TrimPrefix(err.Error(), errInvalidToken.Error()+": "))
		return
	}
	ev.Detail["sub"] = c.Subject
	ev.Detail["jti"] = c.ID
	scopes := strings.Split(c.Scope, " ")
	if !slices.Contains(scopes, "openid") {
		challenge(http.StatusForbidden, "insufficient_scope", "the access token was not granted the openid scope")
		return
	}
	resp := userinfo{Sub: c.Subject}
	if u := s.usersBySub[c.Subject]; u != nil {
		if slices.Contains(scopes, "email") && u.Email != "" {
			verified := !u.EmailUnverified
			resp.Email, resp.EmailVerified = u.Email, &verified
		}
		if slices.Contains(scopes, "profile") {
			resp.Name, resp.PreferredUsername = u.Name, u.Username
		}
		if slices.Contains(scopes, "groups") {
			resp.Groups = slices.Clone(u.Groups)
		}
	}
	control.WriteJSON(w, http.StatusOK, resp)
	s.record(ctx, ev, http.StatusOK)
}
