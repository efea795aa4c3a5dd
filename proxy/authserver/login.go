package authserver

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/login"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// startLogin sends the browser to the identity provider. A cookie binds the
// sign-in to this browser, so a sign-in started elsewhere cannot be finished
// here. After sign-in the browser resumes ar, or goes to returnTo when ar is
// nil.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, ar *AuthRequest, returnTo string) error {
	state, binding := store.NewSecret(24), store.NewSecret(24)
	ls := &LoginState{Verifier: store.NewSecret(32), Nonce: store.NewSecret(16), Binding: store.SecretKey(binding), ReturnTo: returnTo}
	if ar != nil {
		ls.RequestID, ls.ReturnTo = ar.ID, ""
	}
	callback := s.origin + PathLoginCB
	authURL, err := s.o.IdP.AuthURL(r.Context(), callback, state, ls.Nonce, ls.Verifier)
	if err != nil {
		return apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"The identity provider %s could not be reached to sign you in.", s.o.IdP.Issuer)
	}
	if err := s.logins.Put(r.Context(), store.SecretKey(state), ls, s.o.Now().Add(FlowTTL)); err != nil {
		return storageError(err)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: binding, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(FlowTTL.Seconds())})
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// loginCallback finishes a sign-in and resumes the authorization.
func (s *Server) loginCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	unknown := apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
		"This sign-in is unknown, already used or expired; start again from your MCP client.")
	// The state is read first and consumed only once the answer is known to
	// belong to this browser: someone who learns the state must not be able
	// to void the sign-in of the browser that started it.
	key := store.SecretKey(q.Get("state"))
	ls, err := s.logins.Get(r.Context(), key)
	if err != nil {
		return storageError(err)
	}
	if ls == nil {
		return unknown
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(store.SecretKey(c.Value)), []byte(ls.Binding)) != 1 {
		return apierror.New(apierror.CodeLoginFailed, http.StatusBadRequest,
			"This sign-in was started in another browser; start again from your MCP client.")
	}
	if taken, err := s.logins.Take(r.Context(), key); err != nil || taken == nil {
		return unknown
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	if e := q.Get("error"); e != "" {
		return apierror.New(apierror.CodeLoginFailed, http.StatusForbidden,
			"The identity provider did not sign you in: %s %s.", e, q.Get("error_description"))
	}
	id, err := s.o.IdP.Finish(r.Context(), s.origin+PathLoginCB, q.Get("code"), ls.Verifier, ls.Nonce)
	if err != nil {
		return apierror.Wrap(err, apierror.CodeLoginFailed, http.StatusBadGateway,
			"Signing in at %s failed; try again, and if it keeps failing the proxy log has the cause.", s.o.IdP.Issuer)
	}
	sess, err := s.newSession(r.Context(), w, id)
	if err != nil {
		return storageError(err)
	}
	s.o.Log.Info("user signed in", s.logAttrs(r.Context(), slog.String("event", "login_succeeded"), slog.String("user", id.Subject))...)
	if ls.ReturnTo != "" {
		http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
		return nil
	}
	ar, err := s.requests.Get(r.Context(), store.SecretKey(ls.RequestID))
	if err != nil {
		return storageError(err)
	}
	if ar == nil {
		return apierror.New(apierror.CodeInvalidRequest, http.StatusBadRequest,
			"You are signed in, but the MCP client's authorization request expired; start again from your MCP client.")
	}
	return s.continueAuthorize(w, r, ar, sess)
}

func (s *Server) newSession(ctx context.Context, w http.ResponseWriter, id *login.Identity) (*Session, error) {
	sess := &Session{Subject: id.Subject, Email: id.Email, Name: id.Name, Expires: s.o.Now().Add(SessionTTL)}
	sid := store.NewSecret(32)
	if err := s.sessions.Put(ctx, store.SecretKey(sid), sess, sess.Expires); err != nil {
		return nil, err
	}
	sess.ID = sid
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sid, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
	return sess, nil
}
