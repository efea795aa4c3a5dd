package mockas

import (
	"errors"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/dpopcheck"
)

// Detail keys of a token event about DPoP (RFC 9449). They are set only
// when the request carried a DPoP header, or while Settings.DPoP is on.
const (
	// detailDPoPProof is "valid" or "invalid" for a verified header,
	// "unverified" for one sent while DPoP is off; absent without a header.
	detailDPoPProof = "dpop_proof"
	// detailDPoPJKT is the proof key's thumbprint, once its signature
	// verified.
	detailDPoPJKT = "dpop_jkt"
	// detailDPoPJTI is the proof's jti.
	detailDPoPJTI = "dpop_jti"
	// detailDPoPNonce is "sent" when the proof carried a nonce.
	detailDPoPNonce = "dpop_nonce"
	// detailTokenType is the token_type of a successful answer.
	detailTokenType = "token_type"
)

// DPoPNonce returns the nonce the token endpoint requires while
// Settings.DPoPNonce is on.
func (s *Server) DPoPNonce() string { return s.dpopNonce.Get() }

// RotateDPoPNonce replaces the nonce; proofs carrying the old one get
// use_dpop_nonce from now on.
func (s *Server) RotateDPoPNonce() string { return s.dpopNonce.Rotate() }

// checkTokenDPoP verifies the DPoP proof of a token request while DPoP is
// on (RFC 9449 §5) and returns the thumbprint of its key, which the tokens
// issued are bound to; "" when the request carries no proof, which then
// gets a Bearer token. ath is not checked: a token request presents no
// access token. The nonce is named in a use_dpop_nonce refusal and (see
// answerToken) in every success, not in other answers, so that a client
// learns it the way RFC 9449 §8 describes.
func (s *Server) checkTokenDPoP(w http.ResponseWriter, r *http.Request, ev *control.Event) (string, *oauthError) {
	set := s.Settings()
	present := len(r.Header.Values("DPoP")) > 0
	if !set.DPoP {
		if present {
			ev.Detail[detailDPoPProof] = "unverified"
		}
		return "", nil
	}
	nonce := ""
	if set.DPoPNonce {
		nonce = s.DPoPNonce()
	}
	if !present {
		return "", nil
	}
	p, err := s.dpop.Verify(r.Header, dpopcheck.Request{Method: r.Method, URL: s.endpoint("/token"), Nonce: nonce})
	if p != nil {
		ev.Detail[detailDPoPJKT] = p.JKT
		ev.Detail[detailDPoPJTI] = p.JTI
		if p.Nonce != "" {
			ev.Detail[detailDPoPNonce] = "sent"
		}
	}
	var de *dpopcheck.Error
	if errors.As(err, &de) {
		if de.Code == dpopcheck.CodeUseNonce {
			w.Header().Set("DPoP-Nonce", nonce)
		}
		ev.Detail[detailDPoPProof] = "invalid"
		return "", &oauthError{Code: de.Code, Description: de.Description}
	}
	ev.Detail[detailDPoPProof] = "valid"
	return p.JKT, nil
}

// checkRefreshBinding refuses a refresh of a grant bound to a DPoP key
// unless the request proved possession of that key (RFC 9449 §5).
func checkRefreshBinding(fam *family, jkt string) *oauthError {
	switch {
	case fam.jkt == "" || fam.jkt == jkt:
		return nil
	case jkt == "":
		return errf(dpopcheck.CodeInvalidProof, "the refresh token is bound to a DPoP key, and the request carries no DPoP proof")
	}
	return errf(dpopcheck.CodeInvalidProof, "the refresh token is bound to another key")
}

// serveRotateDPoPNonce is POST /.test/rotate-dpop-nonce: [Server.RotateDPoPNonce].
func (s *Server) serveRotateDPoPNonce(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		controlError(w, http.StatusMethodNotAllowed, "invalid_request", "/.test/rotate-dpop-nonce accepts POST only")
		return
	}
	n := s.RotateDPoPNonce()
	s.log.Info("mockas_dpop_nonce_rotated")
	control.WriteJSON(w, http.StatusOK, map[string]string{"dpop_nonce": n})
}
