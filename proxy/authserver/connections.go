package authserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/audit"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
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

// ConnectionID is a short, non-reversible id of a binding key: the same id
// the audit log writes as binding_key_id, so the two can be matched.
func ConnectionID(key string) string { return audit.KeyID(key) }

// userTokens returns the signed-in user's upstream tokens on this route,
// under either per-user mode: a token made before the operator changed the
// route's upstream_token_binding is still the user's to see and remove.
func (s *Server) userTokens(r *http.Request, subject string) ([]*upstream.Token, error) {
	var all []*upstream.Token
	for _, mode := range []config.BindingMode{config.BindingPerUser, config.BindingPerSession} {
		toks, err := s.o.Tokens.List(r.Context(), binding.UserPrefix(mode, s.route, subject))
		if err != nil {
			return nil, err
		}
		all = append(all, toks...)
	}
	return all, nil
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// connections lists the user's connections: an HTML page with a disconnect
// button for each, or JSON for Accept: application/json.
func (s *Server) connections(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apierror.MethodNotAllowed(r, http.MethodGet)
	}
	sess, err := s.session(r)
	if err != nil {
		return storageError(err)
	}
	if sess == nil {
		return s.startLogin(w, r, nil, PathConnections)
	}
	toks, err := s.userTokens(r, sess.Subject)
	if err != nil {
		return storageError(err)
	}
	conns := make([]Connection, 0, len(toks))
	for _, t := range toks {
		conns = append(conns, Connection{ID: ConnectionID(t.Key), Upstream: t.Grant.Resource, Client: t.Client, Issuer: tokens.ASName(&t.Grant),
			Scopes: append([]string{}, t.Scopes...), Acquired: t.Acquired, Expires: t.Expiry})
	}
	if wantsJSON(r) {
		pages.JSON(w, http.StatusOK, "no-store", map[string]any{"user": sess.Subject, "connections": conns})
		return nil
	}
	pages.Render(w, http.StatusOK, pages.Connections, map[string]any{
		"Title": "Your connections through " + s.route, "User": sess.Subject, "Host": s.route,
		"Connections": conns, "CSRF": s.FormToken(sess.ID, PathDisconnect), "Action": PathDisconnect,
	})
	return nil
}

// disconnect removes one of the user's connections: the proxy revokes the
// remote tokens where the remote authorization server offers revocation
// (RFC 7009) and deletes them. The user consents again on next use.
func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return apierror.MethodNotAllowed(r, http.MethodPost)
	}
	sess, err := s.session(r)
	if err != nil {
		return storageError(err)
	}
	if sess == nil {
		return apierror.New(apierror.CodeUnauthorized,
			"Sign in first: open %s%s.", s.origin, PathConnections)
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !s.formTokenOK(sess.ID, PathDisconnect, r.PostForm.Get("csrf")) {
		return apierror.New(apierror.CodeInvalidRequest,
			"The disconnect form did not come from this session; reload %s%s and try again.", s.origin, PathConnections).WithStatus(http.StatusForbidden)
	}
	id := r.PostForm.Get("connection")
	toks, err := s.userTokens(r, sess.Subject)
	if err != nil {
		return storageError(err)
	}
	var tok *upstream.Token
	for _, t := range toks {
		if ConnectionID(t.Key) == id {
			tok = t
		}
	}
	if tok == nil {
		return apierror.New(apierror.CodeNotFound,
			"You have no connection %q on %s; it may be disconnected already.", id, s.route)
	}
	revoked, err := s.o.Tokens.Revoke(r.Context(), tok)
	if err != nil {
		return err
	}
	s.o.Log.Info("user disconnected a remote server", s.logAttrs(r.Context(), event.ConnectionRemoved.Attr(),
		slog.String("user", sess.Subject), slog.String("binding", string(s.binding)), slog.String("upstream", tok.Grant.Resource),
		slog.Bool("revoked_upstream", revoked))...)
	s.o.Audit.Try(r.Context(), sess.Subject, tok.Key, "connection_removed", "allowed", map[string]string{"revoked_upstream": fmt.Sprint(revoked)})
	if wantsJSON(r) {
		pages.JSON(w, http.StatusOK, "no-store", map[string]any{"disconnected": id, "revoked_upstream": revoked})
		return nil
	}
	http.Redirect(w, r, PathConnections, http.StatusSeeOther)
	return nil
}
