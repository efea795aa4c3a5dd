package authserver

import (
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/connect"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// handOver gives a downstream authorization, once the user has signed in
// and approved the MCP client, to the upstream leg. When the leg is done at
// once (the user is connected already, the remote server needs no
// authorization, a service account's token came at once) the code
// follows; otherwise the browser is on its way to the remote authorization
// server and the leg comes back through Resume.
func (s *Server) handOver(w http.ResponseWriter, r *http.Request, ar *AuthRequest, sess *login.Session) error {
	res, err := s.o.Upstream.Authorize(w, r, connect.Request{
		ID: ar.ID, Subject: sess.Subject, Client: ar.ClientID, Upstream: ar.Upstream, Scope: ar.Scope,
		BindingKey: binding.Key(s.binding, s.route, sess.Subject, ar.BindingSession, ar.Upstream), Started: ar.Created,
	})
	if err != nil || res == nil {
		return err
	}
	return s.issueCode(w, r, ar, res.Subject, res.BindingKey)
}

// Resume is where the upstream leg hands a downstream authorization back
// after the remote authorization server's callback: the MCP client gets its
// code.
func (s *Server) Resume(w http.ResponseWriter, r *http.Request, res connect.Result) error {
	ar, err := s.requests.Get(r.Context(), store.SecretKey(res.RequestID))
	if err != nil {
		return apierror.Storage(err)
	}
	if ar == nil {
		return apierror.New(apierror.CodeInvalidRequest,
			"The remote server is connected, but the MCP client's authorization request expired; start again from your MCP client.")
	}
	return s.issueCode(w, r, ar, res.Subject, res.BindingKey)
}

var _ connect.Resumer = (*Server)(nil)
