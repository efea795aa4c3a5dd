package authserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/clientid"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/registration"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// authorize is the downstream authorization endpoint. The MCP client's
// browser arrives here; it leaves with a code for the MCP client once the
// user has signed in, approved the client, and (the first time) consented
// at the remote authorization server.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apierror.MethodNotAllowed(r, http.MethodGet)
	}
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if clientID == "" {
		return apierror.New(apierror.CodeInvalidRequest,
			"The authorization request has no client_id; the MCP client must send one.")
	}
	if allowed := s.o.AllowedClientIDDomains; len(allowed) > 0 && !registration.IsRegisteredID(clientID) {
		if u, err := url.Parse(clientID); err == nil && !config.DomainAllowed(u.Hostname(), allowed) {
			return apierror.New(apierror.CodeClientNotAllowed,
				"The MCP client %s is not allowed here: its host %s is not in allowed_client_id_domains.", clientid.Redact(clientID), u.Hostname())
		}
	}
	client, selfRegistered, err := s.resolveClient(r.Context(), clientID)
	var ae *apierror.Error
	if errors.As(err, &ae) {
		return err
	}
	if err != nil {
		msg := err.Error()
		var ce *clientid.Error
		if errors.As(err, &ce) {
			msg = "The MCP client cannot be used: " + ce.Error()
			if ce.Cause != nil { // for the log only
				err = fmt.Errorf("%w: %v", err, ce.Cause)
			}
		}
		return apierror.Wrap(err, apierror.CodeInvalidClient, "%s", msg)
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		return apierror.New(apierror.CodeInvalidRequest,
			"Redirect_uri %q is not one of the redirect_uris the MCP client %s publishes.", redirectURI, client.ID)
	}
	// The redirect URI is the client's, but the client may be anyone's: an
	// error goes back to it only once the signed-in user has approved the
	// client, or the operator lists its host (RFC 9700 §4.11.2); before that
	// it is shown here, so that the proxy's host is no link to anywhere.
	state := q.Get("state")
	fail := func(code, desc string) error {
		if trusted, err := s.redirectTrusted(r, client, selfRegistered); err != nil {
			return storageError(err)
		} else if !trusted {
			return s.refuseHere(r, client.ID, code, desc)
		}
		return s.redirectError(w, r, redirectURI, state, code, desc)
	}
	switch {
	case q.Get("response_type") != "code":
		return fail("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge") == "":
		return fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case q.Get("code_challenge_method") != "S256":
		return fail("invalid_request", "code_challenge_method must be S256")
	}
	resource := q.Get("resource")
	if resource == "" {
		resource = s.origin
	} else if !s.ownsResource(resource) {
		return fail("invalid_target", fmt.Sprintf("resource %q is not on %s", resource, s.origin))
	}
	now := s.o.Now()
	ar := &AuthRequest{
		ID:             store.NewSecret(24),
		Route:          s.route,
		ClientID:       client.ID,
		ClientName:     client.Name,
		ClientAuth:     client.AuthMethod,
		SelfRegistered: selfRegistered,
		RedirectURI:    redirectURI,
		State:          state,
		CodeChallenge:  q.Get("code_challenge"),
		Resource:       resource,
		Scope:          q.Get("scope"),
		Upstream:       s.o.Route.UpstreamFor(resource),
		Created:        now,
		Expires:        now.Add(FlowTTL),
	}
	if s.binding == config.BindingPerSession {
		ar.BindingSession = store.NewSecret(12)
	}
	sess, err := s.session(r)
	if err != nil {
		return storageError(err)
	}
	if sess == nil {
		// Nothing is stored for a browser that is not signed in: the
		// request waits in the sealed sign-in cookie.
		return s.startLogin(w, r, ar, "")
	}
	if err := s.requests.Put(r.Context(), store.SecretKey(ar.ID), ar, ar.Expires); err != nil {
		return storageError(err)
	}
	return s.continueAuthorize(w, r, ar, sess)
}

// ownsResource reports whether a resource indicator names this route.
func (s *Server) ownsResource(resource string) bool {
	u, err := url.Parse(resource)
	return err == nil && u.Fragment == "" && strings.EqualFold(u.Scheme+"://"+u.Host, s.origin)
}

// continueAuthorize moves a request to its next step: sign-in, consent, the
// remote authorization server, or the code.
func (s *Server) continueAuthorize(w http.ResponseWriter, r *http.Request, ar *AuthRequest, sess *login.Session) error {
	if sess == nil {
		return s.startLogin(w, r, ar, "")
	}
	if fresh, err := s.admit(r, sess); err != nil {
		return err
	} else if !fresh {
		return s.startLogin(w, r, ar, "")
	}
	c, err := s.consents.Get(r.Context(), s.consentKey(sess.Subject, ar.ClientID))
	if err != nil {
		return storageError(err)
	}
	if c == nil {
		s.consentPage(w, ar, sess)
		return nil
	}
	return s.handOver(w, r, ar, sess)
}

// issueCode ends a downstream authorization: a code for the MCP client, with
// iss (RFC 9207).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar *AuthRequest, id *request.Identity, bindingKey string) error {
	code := store.NewSecret(32)
	c := &Code{Request: *ar, Subject: id.Subject, Identity: id, BindingKey: bindingKey, Expires: s.o.Now().Add(CodeTTL)}
	if err := s.codes.Put(r.Context(), store.SecretKey(code), c, c.Expires); err != nil {
		return storageError(err)
	}
	_ = s.requests.Delete(r.Context(), store.SecretKey(ar.ID))
	s.o.Metrics.AuthorizationFlow(s.route, metrics.AuthGranted, s.o.Now().Sub(ar.Created))
	u, _ := url.Parse(ar.RedirectURI)
	v := u.Query()
	v.Set("code", code)
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	v.Set("iss", s.origin)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

// redirectTrusted reports whether an error may be sent to the client's
// redirect URI without the user's act: the browser's user approved the
// client, or the operator lists its host in allowed_client_id_domains.
func (s *Server) redirectTrusted(r *http.Request, client *clientid.Client, selfRegistered bool) (bool, error) {
	if !selfRegistered && len(s.o.AllowedClientIDDomains) > 0 && config.DomainAllowed(client.Host(), s.o.AllowedClientIDDomains) {
		return true, nil
	}
	sess, err := s.session(r)
	if err != nil || sess == nil {
		return false, err
	}
	c, err := s.consents.Get(r.Context(), s.consentKey(sess.Subject, client.ID))
	return c != nil, err
}

// refuseHere shows an authorization error on the proxy's own page, with
// the OAuth error the client would have received.
func (s *Server) refuseHere(r *http.Request, clientID, code, desc string) error {
	s.o.Log.Info("authorization refused", s.logAttrs(r.Context(), event.AuthorizationRefused.Attr(),
		slog.String("error_code", code), slog.String("description", desc))...)
	return apierror.New(apierror.CodeInvalidRequest,
		"The MCP client %s sent an authorization request the proxy refuses (%s: %s). The proxy shows it here rather than send your browser to the client, which you have not approved.",
		clientid.Redact(clientID), code, desc)
}

// redirectError returns an OAuth error to the MCP client's redirect URI.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) error {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return apierror.New(apierror.CodeInvalidRequest, "%s", desc)
	}
	v := u.Query()
	v.Set("error", code)
	v.Set("error_description", desc)
	if state != "" {
		v.Set("state", state)
	}
	v.Set("iss", s.origin)
	u.RawQuery = v.Encode()
	s.o.Log.Info("authorization refused", s.logAttrs(r.Context(), event.AuthorizationRefused.Attr(),
		slog.String("error_code", code), slog.String("description", desc))...)
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}
