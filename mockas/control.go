package mockas

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// controlMux is the test-control API under /.test/. [control.Guard] puts the
// shared secret in front of it. Its requests are never recorded as events.
func (s *Server) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(control.PathPrefix+"events", control.EventsHandler(s.rec))
	mux.Handle(control.PathPrefix+"faults", s.faults.ControlHandler())
	mux.HandleFunc(control.PathPrefix+"settings", s.serveSettings)
	mux.HandleFunc(control.PathPrefix+"rotate-key", s.serveRotateKey)
	mux.HandleFunc(control.PathPrefix+"revoke-user", s.serveRevokeUser)
	mux.HandleFunc(control.PathPrefix+"counters", s.serveCounters)
	mux.HandleFunc(control.PathPrefix+"rotate-dpop-nonce", s.serveRotateDPoPNonce)
	mux.HandleFunc(control.PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusNotFound, "not_found", "%s is not a control endpoint (events, faults, settings, rotate-key, revoke-user, counters, rotate-dpop-nonce)", r.URL.Path)
	})
	return mux
}

// serveRotateKey is POST /.test/rotate-key: [Server.RotateKey], answering
// the new key id and how many keys the JWKS now publishes.
func (s *Server) serveRotateKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		controlError(w, http.StatusMethodNotAllowed, "invalid_request", "/.test/rotate-key accepts POST only")
		return
	}
	if err := s.RotateKey(); err != nil {
		controlError(w, http.StatusInternalServerError, "server_error", "%v", err)
		return
	}
	set := s.JWKS()
	kid := set.Keys[len(set.Keys)-1].KeyID
	s.log.Info("mockas_key_rotated", "kid", kid, "keys", len(set.Keys))
	control.WriteJSON(w, http.StatusOK, map[string]any{"kid": kid, "keys": len(set.Keys)})
}

// ErrUnknownSubject is returned by [Server.RevokeUser] for a subject that
// names no user, no client and no grant.
var ErrUnknownSubject = errors.New("unknown subject")

// RevokedGrants is what [Server.RevokeUser] revoked.
type RevokedGrants struct {
	Subject string `json:"subject"`
	// Grants are the grants (the tokens of one authorization code, or of
	// one client_credentials request) that were live and are now revoked.
	Grants int `json:"grants"`
	// AccessTokens are the unexpired access tokens of those grants, each
	// now revoked by its jti.
	AccessTokens int `json:"access_tokens"`
	// RefreshTokens are the refresh tokens of those grants that could still
	// have been used.
	RefreshTokens int `json:"refresh_tokens"`
	// Codes are authorization codes issued to the subject and not yet
	// redeemed; they are discarded.
	Codes int `json:"codes"`
	// Consents are the clients whose approval the subject gave and which
	// is now forgotten, so the next authorization asks again.
	Consents int `json:"consents"`
}

// RevokeUser revokes every grant of a subject (a user's sub, or a client id
// for its client_credentials grants): its refresh tokens stop working, its
// access tokens are refused by the userinfo endpoint, its unredeemed codes
// are discarded and its consents forgotten. The browser's login session is
// left alone. A subject that names no user, no client and no grant is
// refused with [ErrUnknownSubject]; a known one without grants answers zero
// counts.
func (s *Server) RevokeUser(subject string) (RevokedGrants, error) {
	out := RevokedGrants{Subject: subject}
	known := s.usersBySub[subject] != nil || s.lookupClient(subject) != nil
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	revoke := map[string]bool{}
	for id, f := range s.st.families {
		if f.sub != subject {
			continue
		}
		known = true
		if !f.revoked {
			revoke[id] = true
		}
	}
	for _, c := range s.st.codes {
		if c.sub == subject {
			known = true
		}
	}
	if _, ok := s.st.consents[subject]; ok {
		known = true
	}
	if !known {
		return out, fmt.Errorf("%w %q: no user has this sub, no client this id, and no grant names it", ErrUnknownSubject, subject)
	}
	for _, a := range s.st.access {
		if revoke[a.family] && !a.revoked && now.Before(a.expires) {
			a.revoked = true
			out.AccessTokens++
		}
	}
	for _, rt := range s.st.refresh {
		if revoke[rt.family] && !rt.used && now.Before(rt.expires) {
			out.RefreshTokens++
		}
	}
	for id := range revoke {
		s.st.revokeFamily(id, "the test control API revoked every grant of "+subject)
		out.Grants++
	}
	for k, c := range s.st.codes {
		if c.sub == subject && !c.used {
			delete(s.st.codes, k)
			out.Codes++
		}
	}
	out.Consents = len(s.st.consents[subject])
	delete(s.st.consents, subject)
	return out, nil
}

// serveRevokeUser is POST /.test/revoke-user {"subject":"alice"}.
func (s *Server) serveRevokeUser(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		controlError(w, http.StatusMethodNotAllowed, "invalid_request", "/.test/revoke-user accepts POST only")
		return
	}
	var body struct {
		Subject string `json:"subject"`
	}
	if err := decodeControlJSON(w, r, &body); err != nil {
		controlError(w, http.StatusBadRequest, "invalid_request", `the body is not {"subject":"..."}: %v`, err)
		return
	}
	if body.Subject == "" {
		controlError(w, http.StatusBadRequest, "invalid_request", "subject is missing or empty")
		return
	}
	out, err := s.RevokeUser(body.Subject)
	if err != nil {
		controlError(w, http.StatusNotFound, "unknown_subject", "%v", err)
		return
	}
	s.log.Info("mockas_user_revoked", "sub", out.Subject, "grants", out.Grants, "access_tokens", out.AccessTokens,
		"refresh_tokens", out.RefreshTokens, "codes", out.Codes, "consents", out.Consents)
	control.WriteJSON(w, http.StatusOK, out)
}

// Counters returns how many events of each kind were recorded since the
// last reset of the events.
func (s *Server) Counters() map[string]int {
	out := map[string]int{}
	for _, e := range s.rec.Events() {
		out[e.Kind]++
	}
	return out
}

// serveCounters is GET /.test/counters.
func (s *Server) serveCounters(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		controlError(w, http.StatusMethodNotAllowed, "invalid_request", "/.test/counters accepts GET only")
		return
	}
	control.WriteJSON(w, http.StatusOK, s.Counters())
}
