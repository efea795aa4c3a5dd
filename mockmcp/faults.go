package mockmcp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// Faults are failures a scenario switches on through the control API
// (PUT /.test/faults) or [Server.SetFaults]. The zero value is no fault.
type Faults struct {
	// MCPStatus, when not zero, is the status (400..599) the MCP endpoint
	// answers to every request whose token passed the checks, with a JSON
	// body {"error":"test_fault",...}: an upstream that is failing.
	MCPStatus int `json:"mcp_status,omitempty"`
	// RevokedTokenIDs are token ids (jti) refused with 401 invalid_token, as
	// if the AS had revoked them: JWTs are self-contained, so revocation at
	// the AS alone does not reach this server.
	RevokedTokenIDs []string `json:"revoked_token_ids,omitempty"`
	// RevokeSeen, when set in a PUT, adds the jti of every token the server
	// has accepted so far to RevokedTokenIDs. It always reads back false.
	RevokeSeen bool `json:"revoke_seen,omitempty"`
}

// SetFaults replaces the current faults and returns them as stored.
func (s *Server) SetFaults(f Faults) (Faults, error) {
	if f.MCPStatus != 0 && (f.MCPStatus < 400 || f.MCPStatus > 599) {
		return s.Faults(), fmt.Errorf("mcp_status %d: want 0 or 400..599", f.MCPStatus)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	revoked := map[string]bool{}
	for _, jti := range f.RevokedTokenIDs {
		revoked[jti] = true
	}
	if f.RevokeSeen {
		for jti := range s.seenJTIs {
			revoked[jti] = true
		}
	}
	f.RevokeSeen = false
	f.RevokedTokenIDs = make([]string, 0, len(revoked))
	for jti := range revoked {
		f.RevokedTokenIDs = append(f.RevokedTokenIDs, jti)
	}
	slices.Sort(f.RevokedTokenIDs)
	s.faults, s.revoked = f, revoked
	return s.faults, nil
}

// Faults returns the current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.RevokedTokenIDs = slices.Clone(f.RevokedTokenIDs)
	return f
}

// serveFaults serves GET (read), PUT (replace, JSON [Faults]) and DELETE
// (clear) on /.test/faults.
func (s *Server) serveFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		control.WriteJSON(w, http.StatusOK, s.Faults())
	case http.MethodPut:
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			control.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "faults: " + err.Error()})
			return
		}
		got, err := s.SetFaults(f)
		if err != nil {
			control.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		s.log.Info("faults_set", "mcp_status", got.MCPStatus, "revoked_token_ids", len(got.RevokedTokenIDs))
		control.WriteJSON(w, http.StatusOK, got)
	case http.MethodDelete:
		_, _ = s.SetFaults(Faults{})
		s.log.Info("faults_cleared")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		control.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "use GET, PUT or DELETE"})
	}
}
