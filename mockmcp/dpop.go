package mockmcp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
)

// Detail keys of an MCP request while Settings.DPoP is on. Values never
// hold a token or a proof.
const (
	DetailAuthScheme = "auth_scheme" // the Authorization scheme: DPoP or Bearer
	DetailTokenJKT   = "token_jkt"   // the verified token's cnf.jkt; absent for an unbound token
	DetailDPoPProof  = "dpop_proof"  // "valid" or "invalid"; absent when no proof was checked
	DetailDPoPJKT    = "dpop_jkt"    // the thumbprint of the proof's key, once its signature verified
	DetailDPoPJTI    = "dpop_jti"    // the proof's jti
	DetailDPoPNonce  = "dpop_nonce"  // "sent" when the proof carried a nonce
	DetailDPoPAth    = "dpop_ath"    // "ok" when the proof's ath is the hash of the token presented
)

// dpopAlgs is the algs parameter of a DPoP challenge (RFC 9449 §7.1).
const dpopAlgs = "ES256"

// LastDPoP is GET /.test/last-dpop: the last request accepted with a
// DPoP-bound token, with its credentials in clear so that a scenario can
// replay it and see it refused. Only the guarded control API hands them
// out; events and logs hold fingerprints.
type LastDPoP struct {
	Method        string `json:"method"`
	URL           string `json:"url"`
	Authorization string `json:"authorization"`
	DPoP          string `json:"dpop"`
}

// DPoPNonce returns the nonce proofs must carry while Settings.DPoPNonce is
// on.
func (s *Server) DPoPNonce() string { return s.dpopNonce.Get() }

// RotateDPoPNonce replaces the nonce; proofs carrying the old one get
// use_dpop_nonce from now on.
func (s *Server) RotateDPoPNonce() string { return s.dpopNonce.Rotate() }

// checkDPoP checks a verified token's presentation while Settings.DPoP is
// on (RFC 9449 §7): the DPoP scheme, a token bound to a key, and a proof of
// that key for this request (htm, htu, ath, fresh iat, unused jti, the
// current nonce when one is required).
func (s *Server) checkDPoP(r *http.Request, req *request, scheme, tok string, id *Identity) *authFailure {
	ev := req.ev
	ev.Detail[DetailAuthScheme] = scheme
	if id.JKT != "" {
		ev.Detail[DetailTokenJKT] = id.JKT
	}
	if scheme != schemeDPoP {
		if id.JKT != "" {
			return refusedToken("a DPoP-bound token was presented as a bearer token")
		}
		return refusedToken("this server requires DPoP-bound tokens (RFC 9449): present one with Authorization: DPoP and a DPoP proof")
	}
	if id.JKT == "" {
		return refusedToken("the token is not DPoP-bound: it has no cnf.jkt (RFC 9449 section 6)")
	}
	nonce := ""
	if req.st.DPoPNonce {
		nonce = s.DPoPNonce()
	}
	p, err := s.dpop.Verify(r.Header, dpopcheck.Request{Method: r.Method, URL: s.origin + r.URL.Path, AccessToken: tok, Nonce: nonce})
	if p != nil {
		ev.Detail[DetailDPoPJKT] = p.JKT
		ev.Detail[DetailDPoPJTI] = p.JTI
		if p.Nonce != "" {
			ev.Detail[DetailDPoPNonce] = "sent"
		}
	}
	var de *dpopcheck.Error
	if errors.As(err, &de) {
		ev.Detail[DetailDPoPProof] = "invalid"
		return &authFailure{status: http.StatusUnauthorized, code: de.Code, desc: de.Description, nonce: de.Code == dpopcheck.CodeUseNonce}
	}
	ev.Detail[DetailDPoPProof] = "valid"
	ev.Detail[DetailDPoPAth] = "ok"
	if p.JKT != id.JKT {
		return &authFailure{status: http.StatusUnauthorized, code: dpopcheck.CodeInvalidProof, desc: "the proof's key is not the one the token is bound to"}
	}
	return nil
}

func refusedToken(desc string) *authFailure {
	return &authFailure{status: http.StatusUnauthorized, code: "invalid_token", desc: desc}
}

// acceptedDPoP remembers the credentials of a request accepted with a
// DPoP-bound token for GET /.test/last-dpop.
func (s *Server) acceptedDPoP(r *http.Request) {
	last := &LastDPoP{Method: r.Method, URL: s.origin + r.URL.RequestURI(), Authorization: r.Header.Get("Authorization"), DPoP: r.Header.Get("DPoP")}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastDPoP = last
}

// serveLastDPoP serves GET /.test/last-dpop: 404 before any request was
// accepted with a DPoP-bound token.
func (s *Server) serveLastDPoP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	s.mu.Lock()
	last := s.lastDPoP
	s.mu.Unlock()
	if last == nil {
		control.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no request was accepted with a DPoP-bound token yet"})
		return
	}
	control.WriteJSON(w, http.StatusOK, last)
}

// serveRotateDPoPNonce serves POST /.test/rotate-dpop-nonce.
func (s *Server) serveRotateDPoPNonce(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	n := s.RotateDPoPNonce()
	s.log.Info("dpop_nonce_rotated")
	control.WriteJSON(w, http.StatusOK, map[string]string{"dpop_nonce": n})
}

// The Authorization schemes this server knows.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// challengeScheme is the scheme of the challenges under st.
func challengeScheme(st *Settings) string {
	if st.DPoP {
		return schemeDPoP
	}
	return schemeBearer
}

// canonicalScheme names an Authorization scheme the server accepts under
// st, matched case-insensitively (RFC 9110 §11.1); "" for any other.
func canonicalScheme(st *Settings, scheme string) string {
	switch {
	case strings.EqualFold(scheme, schemeBearer):
		return schemeBearer
	case st.DPoP && strings.EqualFold(scheme, schemeDPoP):
		return schemeDPoP
	}
	return ""
}
