package mockas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// Settings are what a test may change while the server runs, in process
// with [Server.SetSettings] or over HTTP with PATCH /.test/settings. New
// lifetimes apply to what is issued afterwards; codes and tokens already
// issued keep their expiry.
type Settings struct {
	// AccessTokenTTL is the lifetime of access tokens and ID tokens.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token.
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of authorization codes.
	CodeTTL time.Duration
	// CIMD turns Client ID Metadata Documents on or off, and with them
	// client_id_metadata_document_supported in the metadata.
	CIMD bool
	// DCR turns dynamic client registration on or off, and with it
	// registration_endpoint in the metadata. Clients registered while it
	// was on stay registered.
	DCR bool
	// DPoP turns DPoP (RFC 9449) on: the metadata offers
	// dpop_signing_alg_values_supported, a token request's DPoP proof is
	// verified and binds the tokens issued to its key. A request without a
	// proof still gets a Bearer token, unless its refresh token is bound.
	DPoP bool
	// DPoPNonce makes the token endpoint require a server-chosen nonce in
	// every proof (RFC 9449 §8). It needs DPoP.
	DPoPNonce bool
}

// Settings returns the current settings.
func (s *Server) Settings() Settings {
	s.setMu.RLock()
	defer s.setMu.RUnlock()
	return s.set
}

// SetSettings replaces the settings. Every lifetime must be positive; on
// an error nothing changes.
func (s *Server) SetSettings(st Settings) error {
	if err := st.validate(); err != nil {
		return err
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.set = st
	return nil
}

func (st Settings) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"access_token_ttl", st.AccessTokenTTL}, {"refresh_token_ttl", st.RefreshTokenTTL}, {"code_ttl", st.CodeTTL}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v must be positive", d.name, d.v)
		}
	}
	if st.DPoPNonce && !st.DPoP {
		return errors.New("dpop_nonce needs dpop: a nonce is part of a DPoP proof")
	}
	return nil
}

// settingsJSON is the wire form of Settings: lifetimes as Go duration
// strings ("1h0m0s").
type settingsJSON struct {
	AccessTokenTTL  string `json:"access_token_ttl"`
	RefreshTokenTTL string `json:"refresh_token_ttl"`
	CodeTTL         string `json:"code_ttl"`
	CIMD            bool   `json:"cimd"`
	DCR             bool   `json:"dcr"`
	DPoP            bool   `json:"dpop"`
	DPoPNonce       bool   `json:"dpop_nonce"`
}

func (st Settings) wire() settingsJSON {
	return settingsJSON{
		AccessTokenTTL: st.AccessTokenTTL.String(), RefreshTokenTTL: st.RefreshTokenTTL.String(),
		CodeTTL: st.CodeTTL.String(), CIMD: st.CIMD, DCR: st.DCR, DPoP: st.DPoP, DPoPNonce: st.DPoPNonce,
	}
}

// settingsPatch is the body of PATCH /.test/settings: absent or null
// fields stay as they are.
type settingsPatch struct {
	AccessTokenTTL  *string `json:"access_token_ttl"`
	RefreshTokenTTL *string `json:"refresh_token_ttl"`
	CodeTTL         *string `json:"code_ttl"`
	CIMD            *bool   `json:"cimd"`
	DCR             *bool   `json:"dcr"`
	DPoP            *bool   `json:"dpop"`
	DPoPNonce       *bool   `json:"dpop_nonce"`
}

// apply returns st changed by p.
func (p settingsPatch) apply(st Settings) (Settings, error) {
	for _, d := range []struct {
		name string
		raw  *string
		dst  *time.Duration
	}{
		{"access_token_ttl", p.AccessTokenTTL, &st.AccessTokenTTL},
		{"refresh_token_ttl", p.RefreshTokenTTL, &st.RefreshTokenTTL},
		{"code_ttl", p.CodeTTL, &st.CodeTTL},
	} {
		if d.raw == nil {
			continue
		}
		v, err := time.ParseDuration(*d.raw)
		if err != nil {
			return st, fmt.Errorf("%s %q is not a Go duration such as 90s or 1h", d.name, *d.raw)
		}
		*d.dst = v
	}
	for _, b := range []struct {
		patch *bool
		dst   *bool
	}{{p.CIMD, &st.CIMD}, {p.DCR, &st.DCR}, {p.DPoP, &st.DPoP}, {p.DPoPNonce, &st.DPoPNonce}} {
		if b.patch != nil {
			*b.dst = *b.patch
		}
	}
	return st, st.validate()
}

// decodeControlJSON reads a control request's JSON body into v: one JSON
// value, at most 64 KiB, no unknown fields.
func decodeControlJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the body is empty; send a JSON object")
		}
		return err
	}
	if dec.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

// controlError answers a control request with a JSON error.
func controlError(w http.ResponseWriter, status int, code, format string, args ...any) {
	control.WriteJSON(w, status, map[string]string{"error": code, "error_description": fmt.Sprintf(format, args...)})
}

// serveSettings is /.test/settings: GET returns the settings, PATCH changes
// the fields it names and returns the result.
func (s *Server) serveSettings(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		control.WriteJSON(w, http.StatusOK, s.Settings().wire())
	case http.MethodPatch:
		var p settingsPatch
		if err := decodeControlJSON(w, r, &p); err != nil {
			controlError(w, http.StatusBadRequest, "invalid_request", "the body is not a settings patch: %v", err)
			return
		}
		s.setMu.Lock()
		st, err := p.apply(s.set)
		if err == nil {
			s.set = st
		}
		s.setMu.Unlock()
		if err != nil {
			controlError(w, http.StatusBadRequest, "invalid_request", "%v; nothing was changed", err)
			return
		}
		s.log.Info("mockas_settings_changed", "access_token_ttl", st.AccessTokenTTL.String(), "refresh_token_ttl", st.RefreshTokenTTL.String(),
			"code_ttl", st.CodeTTL.String(), "cimd", st.CIMD, "dcr", st.DCR, "dpop", st.DPoP, "dpop_nonce", st.DPoPNonce)
		control.WriteJSON(w, http.StatusOK, st.wire())
	default:
		w.Header().Set("Allow", "GET, PATCH")
		controlError(w, http.StatusMethodNotAllowed, "invalid_request", "/.test/settings accepts GET and PATCH")
	}
}
