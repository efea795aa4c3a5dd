package authserver

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// maxLoginCookie bounds the sealed sign-in a browser carries (browsers
// keep cookies of about 4 KB; the name and attributes need the rest).
const maxLoginCookie = 3500

// loginSealer seals the sign-ins in flight. Its key is derived from the
// form key, which replicas share, so a sign-in started at one replica
// finishes at another.
func loginSealer(formKey []byte) (*store.Sealer, error) {
	k, err := hkdf.Key(sha256.New, formKey, nil, "mcp-proxy sign-in in flight", store.KeySize)
	if err != nil {
		return nil, err
	}
	return store.NewSealer(k)
}

// loginCookieName is the cookie of the sign-in whose state is state: one
// cookie per sign-in, so two started in one browser do not undo each other.
func loginCookieName(state string) string { return loginCookie + "-" + store.SecretKey(state)[:16] }

// startLogin sends the browser to the identity provider. The sign-in in
// flight (PKCE verifier, nonce, and the authorization request that waits
// for it) travels in a sealed cookie rather than in the store: a browser
// that is not signed in makes the proxy write nothing, and only the
// browser that started the sign-in can finish it. After sign-in the
// browser resumes ar, or goes to returnTo when ar is nil.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, ar *AuthRequest, returnTo string) error {
	state := store.NewSecret(24)
	ls := &LoginState{Verifier: store.NewSecret(32), Nonce: store.NewSecret(16), ReturnTo: returnTo,
		Request: ar, Expires: s.o.Now().Add(FlowTTL)}
	if ar != nil {
		ls.ReturnTo = ""
	}
	value, err := s.sealLogin(state, ls)
	if err != nil {
		return err
	}
	callback := s.origin + PathLoginCB
	authURL, err := s.o.IdP.AuthURL(r.Context(), callback, state, ls.Nonce, ls.Verifier)
	if err != nil {
		return apierror.Wrap(err, apierror.CodeLoginFailed,
			"The identity provider %s could not be reached to sign you in.", s.o.IdP.Issuer)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookieName(state), Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(FlowTTL.Seconds())})
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// sealLogin seals ls for the cookie of state; the route and the state are
// its associated data, so the cookie opens for this sign-in only.
func (s *Server) sealLogin(state string, ls *LoginState) (string, error) {
	b, err := json.Marshal(ls)
	if err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(s.loginSeal.Seal(nil, b, s.loginAAD(state)))
	if len(v) > maxLoginCookie {
		return "", apierror.New(apierror.CodeInvalidRequest,
			"The authorization request is too large to keep while you sign in (client_id, redirect_uri, state, scope and resource take %d bytes sealed; at most %d); the MCP client must send a shorter one.",
			len(v), maxLoginCookie)
	}
	return v, nil
}

func (s *Server) loginAAD(state string) []byte {
	return []byte(s.route + "\x00" + store.SecretKey(state))
}

// openLogin returns the sign-in in flight of state from the browser's
// cookie, or nil when the browser has none that opens and is current.
func (s *Server) openLogin(r *http.Request, state string) *LoginState {
	if state == "" {
		return nil
	}
	c, err := r.Cookie(loginCookieName(state))
	if err != nil {
		return nil
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	b, err := s.loginSeal.Open(nil, sealed, s.loginAAD(state))
	if err != nil {
		return nil
	}
	var ls LoginState
	if json.Unmarshal(b, &ls) != nil || !s.o.Now().Before(ls.Expires) {
		return nil
	}
	return &ls
}

// loginCallback finishes a sign-in and resumes the authorization.
func (s *Server) loginCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	ls := s.openLogin(r, state)
	if ls == nil {
		return apierror.New(apierror.CodeLoginFailed,
			"This sign-in is unknown, expired, already finished, or was started in another browser; start again from your MCP client.").WithStatus(http.StatusBadRequest)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookieName(state), Value: "", Path: "/", Secure: true, HttpOnly: true, MaxAge: -1})
	if e := q.Get("error"); e != "" {
		return apierror.New(apierror.CodeLoginFailed,
			"The identity provider did not sign you in: %s %s.", e, q.Get("error_description")).WithStatus(http.StatusForbidden)
	}
	id, idt, err := s.o.IdP.Finish(r.Context(), s.origin+PathLoginCB, q.Get("code"), ls.Verifier, ls.Nonce)
	if err != nil {
		return apierror.Wrap(err, apierror.CodeLoginFailed,
			"Signing in at %s failed; try again, and if it keeps failing the proxy log has the cause.", s.o.IdP.Issuer)
	}
	if s.enterprise() {
		// Only an enterprise route exchanges it; others keep the claims.
		if err := s.o.IDTokens.Keep(r.Context(), id.Subject, idt); err != nil {
			return storageError(err)
		}
	}
	sess, err := s.o.Sessions.Start(r.Context(), w, id)
	if err != nil {
		return storageError(err)
	}
	s.o.Log.Info("user signed in", s.logAttrs(r.Context(), event.LoginSucceeded.Attr(), slog.String("user", id.Subject))...)
	if ls.ReturnTo != "" {
		http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
		return nil
	}
	ar := ls.Request
	if ar == nil || !s.o.Now().Before(ar.Expires) {
		return apierror.New(apierror.CodeInvalidRequest,
			"You are signed in, but the MCP client's authorization request expired; start again from your MCP client.")
	}
	// Now that the user is signed in, the request is kept in the store for
	// the consent and the remote authorization server.
	if err := s.requests.Put(r.Context(), store.SecretKey(ar.ID), ar, ar.Expires); err != nil {
		return storageError(err)
	}
	return s.continueAuthorize(w, r, ar, sess)
}
