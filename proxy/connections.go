package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// Connection is one remote server a user has connected through a route, as
// GET /.mcp-proxy/connections lists it.
type Connection struct {
	// ID names the connection in a disconnect request. It is derived from
	// the binding key and reveals nothing else.
	ID       string `json:"id"`
	Upstream string `json:"upstream"`
	// Client is the MCP client whose authorization made the connection.
	Client   string    `json:"client,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	Scopes   []string  `json:"scopes"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires,omitzero"`
}

// connectionID is a short, non-reversible id of a binding key: the same
// id the audit log writes as binding_key_id, so the two can be matched.
func connectionID(key string) string { return audit.KeyID(key) }

// userTokens returns the signed-in user's upstream tokens on this route.
func (rt *route) userTokens(r *http.Request, subject string) ([]*store.UpstreamToken, error) {
	if rt.binding == config.BindingServiceAccount {
		return nil, nil // the route's one token is not a user's connection
	}
	toks, err := rt.p.st.upstreamTokens(r.Context(), rt.userKeyPrefix(subject))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(toks, func(a, b *store.UpstreamToken) int { return strings.Compare(a.Key, b.Key) })
	return toks, nil
}

// connections lists the user's connections: an HTML page with a disconnect
// button for each, or JSON for Accept: application/json.
func (rt *route) connections(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		rt.writeError(w, r, apierror.New(apierror.CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Use GET to list connections."))
		return
	}
	sess, err := rt.session(r)
	if err != nil {
		rt.writeError(w, r, storageError(err))
		return
	}
	if sess == nil {
		rt.startLogin(w, r, nil, pathConnections)
		return
	}
	toks, err := rt.userTokens(r, sess.Subject)
	if err != nil {
		rt.writeError(w, r, storageError(err))
		return
	}
	conns := make([]Connection, 0, len(toks))
	for _, t := range toks {
		conns = append(conns, Connection{ID: connectionID(t.Key), Upstream: t.Grant.Resource, Client: t.Client, Issuer: asName(&t.Grant),
			Scopes: append([]string{}, t.Scopes...), Acquired: t.Acquired, Expires: t.Expiry})
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, "No-store.", map[string]any{"user": sess.Subject, "connections": conns})
		return
	}
	renderPage(w, http.StatusOK, connectionsTemplate, map[string]any{
		"Title": "Your connections through " + rt.host, "User": sess.Subject, "Host": rt.host,
		"Connections": conns, "CSRF": rt.p.csrfToken(sess.ID, pathDisconnect), "Action": pathDisconnect,
	})
}

// disconnect removes one of the user's connections: the proxy revokes the
// remote tokens where the remote authorization server offers revocation
// (RFC 7009) and deletes them. The user consents again on next use.
func (rt *route) disconnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rt.writeError(w, r, apierror.New(apierror.CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Use POST to disconnect."))
		return
	}
	sess, err := rt.session(r)
	if err != nil {
		rt.writeError(w, r, storageError(err))
		return
	}
	if sess == nil {
		rt.writeError(w, r, apierror.New(apierror.CodeUnauthorized, http.StatusUnauthorized,
			"Sign in first: open %s%s.", rt.origin, pathConnections))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !rt.p.checkCSRF(sess.ID, pathDisconnect, r.PostForm.Get("csrf")) {
		rt.writeError(w, r, apierror.New(apierror.CodeInvalidRequest, http.StatusForbidden,
			"The disconnect form did not come from this session; reload %s%s and try again.", rt.origin, pathConnections))
		return
	}
	id := r.PostForm.Get("connection")
	toks, err := rt.userTokens(r, sess.Subject)
	if err != nil {
		rt.writeError(w, r, storageError(err))
		return
	}
	var tok *store.UpstreamToken
	for _, t := range toks {
		if connectionID(t.Key) == id {
			tok = t
		}
	}
	if tok == nil {
		rt.writeError(w, r, apierror.New(apierror.CodeNotFound, http.StatusNotFound,
			"You have no connection %q on %s; it may be disconnected already.", id, rt.host))
		return
	}
	// Revoke the refresh token first: it is the one that outlives the other.
	secret := rt.clientSecret(&tok.Grant)
	revoked := tok.Grant.RevocationURL != ""
	for _, t := range []struct{ value, hint string }{{tok.RefreshToken, "refresh_token"}, {tok.AccessToken, "access_token"}} {
		if err := tok.Grant.Revoke(r.Context(), rt.p.hc, t.value, t.hint, secret); err != nil {
			revoked = false
			rt.log.Warn("revocation failed; the token is deleted here anyway", slog.String("event", "token_revocation_failed"),
				slog.String("user", sess.Subject), slog.Any("error", err), slog.String("request_id", apierror.RequestID(r.Context())))
		}
	}
	if err := rt.p.st.del(r.Context(), nsUpstream, tok.Key); err != nil {
		rt.writeError(w, r, storageError(err))
		return
	}
	rt.log.Info("user disconnected a remote server", slog.String("event", "connection_removed"), slog.String("user", sess.Subject),
		slog.String("binding", rt.binding), slog.String("upstream", tok.Grant.Resource), slog.Bool("revoked_upstream", revoked),
		slog.String("request_id", apierror.RequestID(r.Context())))
	rt.audit(r.Context(), sess.Subject, tok.Key, "connection_removed", "allowed", map[string]string{"revoked_upstream": fmt.Sprint(revoked)})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, "No-store.", map[string]any{"disconnected": id, "revoked_upstream": revoked})
		return
	}
	http.Redirect(w, r, pathConnections, http.StatusSeeOther)
}
