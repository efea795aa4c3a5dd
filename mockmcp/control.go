package mockmcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/faults"
)

// maxControlBody bounds the JSON body of a control request.
const maxControlBody = 1 << 20

// Settings are the parts of the configuration a scenario may change while
// the server runs (PATCH /.test/settings or [Server.SetSettings]), so that
// one stack can play several upstreams without a restart. A change applies
// to every request that starts after it: to the metadata, the challenges and
// the token checks. An MCP session keeps the user it was created with: after
// a switch to NoAuth, a session that was started with a token gets the SDK's
// 403 (it is bound to a user that no longer arrives), so start a new one.
type Settings struct {
	// PRM is where protected resource metadata is served and which URL the
	// challenge names; JSON "path", "root" or "absent".
	PRM PRMLocation `json:"prm"`
	// ChallengeScopes are the scopes of the 401 challenge's scope parameter,
	// and the first ones of a 403 insufficient_scope challenge. Empty sends
	// no scope parameter.
	ChallengeScopes []string `json:"challenge_scopes"`
	// ToolScopes names, per tool, the scopes a token must carry to call it.
	ToolScopes map[string][]string `json:"tool_scopes"`
	// NoAuth turns every token check off, as [Config.NoAuth] does.
	NoAuth bool `json:"no_auth"`
	// DPoP makes the server require DPoP-bound tokens (RFC 9449 §7): the
	// Authorization scheme DPoP, a DPoP proof of the key the token's
	// cnf.jkt names, and challenges of the DPoP scheme. Off, the server
	// accepts Bearer tokens only, as it always did.
	DPoP bool `json:"dpop"`
	// DPoPNonce makes every proof carry the server's current nonce (RFC
	// 9449 §9). It needs DPoP.
	DPoPNonce bool `json:"dpop_nonce"`
}

func (st Settings) clone() Settings {
	st.ChallengeScopes = slices.Clone(st.ChallengeScopes)
	if st.ChallengeScopes == nil {
		st.ChallengeScopes = []string{}
	}
	tools := make(map[string][]string, len(st.ToolScopes))
	for tool, scopes := range st.ToolScopes {
		tools[tool] = slices.Clone(scopes)
	}
	st.ToolScopes = tools
	return st
}

// settingsPatch is the body of PATCH /.test/settings: a field that is
// absent (or null) keeps its value.
type settingsPatch struct {
	PRM             *PRMLocation         `json:"prm"`
	ChallengeScopes *[]string            `json:"challenge_scopes"`
	ToolScopes      *map[string][]string `json:"tool_scopes"`
	NoAuth          *bool                `json:"no_auth"`
	DPoP            *bool                `json:"dpop"`
	DPoPNonce       *bool                `json:"dpop_nonce"`
}

// applySwitches copies the patch's booleans into st.
func (p settingsPatch) applySwitches(st *Settings) {
	for _, b := range []struct {
		patch *bool
		dst   *bool
	}{{p.NoAuth, &st.NoAuth}, {p.DPoP, &st.DPoP}, {p.DPoPNonce, &st.DPoPNonce}} {
		if b.patch != nil {
			*b.dst = *b.patch
		}
	}
}

// Settings returns the current settings.
func (s *Server) Settings() Settings { return s.settings.Load().clone() }

// SetSettings replaces the settings. It refuses invalid ones, and NoAuth
// false on a server without authorization servers.
func (s *Server) SetSettings(st Settings) error {
	s.settingsMu.Lock()
	defer s.settingsMu.Unlock()
	return s.setSettingsLocked(st)
}

// ResetSettings restores the settings the server was started with.
func (s *Server) ResetSettings() {
	s.settingsMu.Lock()
	defer s.settingsMu.Unlock()
	st := s.initial.clone()
	s.settings.Store(&st)
	s.logSettings("settings_reset", st)
}

func (s *Server) setSettingsLocked(st Settings) error {
	if errs := checkSettings(st, s.verifier != nil, "json"); len(errs) > 0 {
		return joinErrors(errs)
	}
	st = st.clone()
	s.settings.Store(&st)
	s.logSettings("settings_changed", st)
	return nil
}

func (s *Server) logSettings(msg string, st Settings) {
	tools := slices.Sorted(maps.Keys(st.ToolScopes))
	s.log.Info(msg, "prm", st.PRM.String(), "no_auth", st.NoAuth,
		"challenge_scopes", st.ChallengeScopes, "tool_scopes_for", tools, "dpop", st.DPoP, "dpop_nonce", st.DPoPNonce)
}

// serveSettings serves GET (read), PATCH (change the fields given) and
// DELETE (back to the startup settings) on /.test/settings.
func (s *Server) serveSettings(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		control.WriteJSON(w, http.StatusOK, s.Settings())
	case http.MethodPatch:
		var p settingsPatch
		if err := decodeStrict(r.Body, &p); err != nil {
			badRequest(w, "settings: "+err.Error()+"; nothing was changed")
			return
		}
		s.settingsMu.Lock()
		st := s.settings.Load().clone()
		if p.PRM != nil {
			st.PRM = *p.PRM
		}
		if p.ChallengeScopes != nil {
			st.ChallengeScopes = *p.ChallengeScopes
		}
		if p.ToolScopes != nil {
			st.ToolScopes = *p.ToolScopes
		}
		p.applySwitches(&st)
		err := s.setSettingsLocked(st)
		s.settingsMu.Unlock()
		if err != nil {
			badRequest(w, "settings: "+err.Error()+"; nothing was changed")
			return
		}
		control.WriteJSON(w, http.StatusOK, s.Settings())
	case http.MethodDelete:
		s.ResetSettings()
		control.WriteJSON(w, http.StatusOK, s.Settings())
	default:
		methodNotAllowed(w, "GET, PATCH, DELETE")
	}
}

// TokenIDs is what GET /.test/tokens answers.
type TokenIDs struct {
	// Revoked are the token ids (jti) refused with 401 invalid_token.
	Revoked []string `json:"revoked_token_ids"`
	// Seen are the token ids of every token the server has accepted (at
	// most 10000 are remembered).
	Seen []string `json:"seen_token_ids"`
}

// Revocation is the body of POST and PUT /.test/tokens: which tokens to
// refuse from now on. JWT access tokens are self-contained, so a revocation
// at the AS alone does not reach this server; a scenario revokes here too.
type Revocation struct {
	// TokenIDs are token ids (jti) to refuse.
	TokenIDs []string `json:"revoked_token_ids,omitempty"`
	// Seen adds the id of every token the server has accepted so far.
	Seen bool `json:"revoke_seen,omitempty"`
}

// Revoke adds token ids to the revoked ones and returns the result.
func (s *Server) Revoke(rv Revocation) TokenIDs {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(rv)
	return s.tokenIDsLocked()
}

func (s *Server) revokeLocked(rv Revocation) {
	for _, jti := range rv.TokenIDs {
		s.revoked[jti] = true
	}
	if rv.Seen {
		for jti := range s.seenJTIs {
			s.revoked[jti] = true
		}
	}
}

// ClearRevocations accepts every revoked token again.
func (s *Server) ClearRevocations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.revoked)
}

// TokenIDs returns the revoked and the seen token ids, sorted.
func (s *Server) TokenIDs() TokenIDs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenIDsLocked()
}

func (s *Server) tokenIDsLocked() TokenIDs {
	// Empty lists, not null, in JSON.
	return TokenIDs{
		Revoked: append([]string{}, slices.Sorted(maps.Keys(s.revoked))...),
		Seen:    append([]string{}, slices.Sorted(maps.Keys(s.seenJTIs))...),
	}
}

// serveTokens serves GET (read), POST (add revocations), PUT (replace them)
// and DELETE (clear them) on /.test/tokens.
func (s *Server) serveTokens(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		control.WriteJSON(w, http.StatusOK, s.TokenIDs())
	case http.MethodPost, http.MethodPut:
		var rv Revocation
		if err := decodeStrict(r.Body, &rv); err != nil {
			badRequest(w, "revocation: "+err.Error()+"; nothing was changed")
			return
		}
		s.mu.Lock()
		if r.Method == http.MethodPut {
			clear(s.revoked)
		}
		s.revokeLocked(rv)
		ids := s.tokenIDsLocked()
		s.mu.Unlock()
		s.log.Info("tokens_revoked", "replace", r.Method == http.MethodPut, "revoked_token_ids", len(ids.Revoked))
		control.WriteJSON(w, http.StatusOK, ids)
	case http.MethodDelete:
		s.ClearRevocations()
		s.log.Info("revocations_cleared")
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, "GET, POST, PUT, DELETE")
	}
}

// Counters returns, per event kind, how many events are recorded. The kinds
// of this server are always present, with 0 when none was recorded.
func (s *Server) Counters() map[string]int {
	out := map[string]int{KindMCP: 0, KindPRM: 0, KindOther: 0}
	for _, ev := range s.rec.Events() {
		out[ev.Kind]++
	}
	return out
}

func (s *Server) serveCounters(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	control.WriteJSON(w, http.StatusOK, s.Counters())
}

// Faults returns the fault injector that /.test/faults drives: rules that
// answer the next requests of a path with a status, drop their connection
// or delay them. Faulted requests are still recorded as events, with
// [DetailInjectedFault].
func (s *Server) Faults() *faults.Injector { return s.faults }

// decodeStrict decodes one JSON value and refuses unknown fields.
func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}

func badRequest(w http.ResponseWriter, desc string) {
	control.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": desc})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	control.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "use " + allow})
}

// joinErrors joins problems into one line, for a JSON error_description.
func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}
