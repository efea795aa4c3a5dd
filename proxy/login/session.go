package login

import (
	"context"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// SessionTTL is how long a browser stays signed in on a route host.
const SessionTTL = 8 * time.Hour

// SessionCookie names the browser's session on a route host.
const SessionCookie = "__Host-mcp-proxy-session"

// NSSessions holds sessions, by the hash of the session id.
const NSSessions store.Namespace = "sessions"

// Session is a user signed in through the identity provider, in one
// browser, on one route host.
type Session struct {
	ID string `json:"-"` // the cookie's value; the store keeps its hash
	// Identity is the user as the provider described them at sign-in (its
	// members are stored at the top level, as before claims were kept).
	request.Identity
	Expires time.Time
}

// Sessions are the signed-in browsers.
type Sessions struct {
	Records store.Records[Session]
	Now     func() time.Time
}

// Current returns the signed-in session of r's browser, or nil.
func (s *Sessions) Current(r *http.Request) (*Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, nil
	}
	sess, err := s.Records.Get(r.Context(), store.SecretKey(c.Value))
	if err != nil || sess == nil {
		return nil, err
	}
	if !s.Now().Before(sess.Expires) {
		return nil, nil
	}
	sess.ID = c.Value
	return sess, nil
}

// Start signs the browser of w in as id: a new session and its cookie.
func (s *Sessions) Start(ctx context.Context, w http.ResponseWriter, id *request.Identity) (*Session, error) {
	sess := &Session{Identity: *id, Expires: s.Now().Add(SessionTTL)}
	sid := store.NewSecret(32)
	if err := s.Records.Put(ctx, store.SecretKey(sid), sess, sess.Expires); err != nil {
		return nil, err
	}
	sess.ID = sid
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sid, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
	return sess, nil
}
