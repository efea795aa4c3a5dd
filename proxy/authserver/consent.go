package authserver

import (
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// consentPage asks the signed-in user to approve the MCP client of ar.
func (s *Server) consentPage(w http.ResponseWriter, ar *AuthRequest, sess *login.Session) {
	client := &clientid.Client{ID: ar.ClientID}
	clientHost := client.Host()
	if ar.SelfRegistered {
		clientHost = redirectHost(ar.RedirectURI)
	}
	user := sess.Email
	if user == "" {
		user = sess.Subject
	}
	pages.Render(w, http.StatusOK, pages.Consent, map[string]any{
		"Title": "Allow " + ar.ClientName + "?", "ClientName": ar.ClientName, "ClientHost": clientHost,
		"SelfRegistered": ar.SelfRegistered,
		"ClientID":       ar.ClientID, "RedirectURI": ar.RedirectURI, "Host": s.route, "Remote": s.o.Route.ToURL().Host,
		"Scopes": strings.Fields(ar.Scope), "User": user, "Request": ar.ID, "CSRF": s.FormToken(sess.ID, ar.ID),
		"Action": PathConsent,
	})
}

// consent records the user's decision about an MCP client.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return apierror.MethodNotAllowed(r, http.MethodPost)
	}
	sess, err := s.session(r)
	if err != nil {
		return storageError(err)
	}
	if sess == nil {
		return apierror.New(apierror.CodeInvalidRequest,
			"Your session ended before you decided; start again from your MCP client.").WithStatus(http.StatusForbidden)
	}
	if err := r.ParseForm(); err != nil {
		return apierror.Wrap(err, apierror.CodeInvalidRequest, "The consent form could not be read.")
	}
	reqID := r.PostForm.Get("request")
	if !s.formTokenOK(sess.ID, reqID, r.PostForm.Get("csrf")) {
		return apierror.New(apierror.CodeInvalidRequest,
			"The consent form did not come from this session; start again from your MCP client.").WithStatus(http.StatusForbidden)
	}
	ar, err := s.requests.Get(r.Context(), store.SecretKey(reqID))
	if err != nil {
		return storageError(err)
	}
	if ar == nil {
		return apierror.New(apierror.CodeInvalidRequest,
			"The MCP client's authorization request expired; start again from your MCP client.")
	}
	now := s.o.Now()
	if r.PostForm.Get("decision") != "approve" {
		_ = s.requests.Delete(r.Context(), store.SecretKey(ar.ID))
		s.o.Metrics.AuthorizationFlow(s.route, metrics.AuthDenied, now.Sub(ar.Created))
		return s.redirectError(w, r, ar.RedirectURI, ar.State, "access_denied", "the user denied access")
	}
	if err := s.consents.Put(r.Context(), s.consentKey(sess.Subject, ar.ClientID), &Consent{Time: now}, now.Add(RefreshTokenTTL)); err != nil {
		return storageError(err)
	}
	return s.handOver(w, r, ar, sess)
}
