package mockas

import (
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// Metadata is the authorization server metadata of RFC 8414 §2, which is
// also the OpenID Provider metadata of OpenID Connect Discovery 1.0 §3.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	// DPoPSigningAlgValuesSupported is RFC 9449 §5.1's, present while
	// Settings.DPoP is on.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// Metadata returns the server's metadata document. It follows the
// run-time [Settings]: registration_endpoint only while dynamic client
// registration is on, client_id_metadata_document_supported only while
// Client ID Metadata Documents are, dpop_signing_alg_values_supported only
// while DPoP is.
func (s *Server) Metadata() Metadata {
	auth := []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"}
	set := s.Settings()
	var registration string
	if set.DCR {
		registration = s.endpoint("/register")
	}
	var dpopAlgs []string
	if set.DPoP {
		dpopAlgs = []string{string(jose.ES256)}
	}
	return Metadata{
		Issuer:                                     s.issuer,
		AuthorizationEndpoint:                      s.endpoint("/authorize"),
		TokenEndpoint:                              s.endpoint("/token"),
		JWKSURI:                                    s.endpoint("/jwks"),
		UserinfoEndpoint:                           s.endpoint("/userinfo"),
		RevocationEndpoint:                         s.endpoint("/revoke"),
		RegistrationEndpoint:                       registration,
		ScopesSupported:                            append([]string(nil), s.advertised...),
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        s.grantTypes(),
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          auth,
		RevocationEndpointAuthMethodsSupported:     auth,
		TokenEndpointAuthSigningAlgValuesSupported: []string{"ES256", "RS256"},
		ClientIDMetadataDocumentSupported:          set.CIMD,
		// RFC 9207 §3: every authorization response carries iss.
		AuthorizationResponseIssParameterSupported: true,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{string(s.alg)},
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "email", "email_verified", "name", "groups"},
		PromptValuesSupported:                      []string{"none", "login", "consent"},
		DPoPSigningAlgValuesSupported:              dpopAlgs,
	}
}

// handleMetadata serves the metadata at the RFC 8414 §3.1 well-known URL
// (/.well-known/oauth-authorization-server{issuer-path}) and at both OIDC
// discovery URLs (/.well-known/openid-configuration{issuer-path} and
// {issuer-path}/.well-known/openid-configuration): the same document, whose
// issuer is exactly Config.Issuer (RFC 8414 §3.3).
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, doc string) {
	ev := newEvent(r, "metadata")
	ev.Detail["document"] = doc
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		s.record(r.Context(), ev, http.StatusMethodNotAllowed)
		return
	}
	control.WriteJSON(w, http.StatusOK, s.Metadata())
	s.record(r.Context(), ev, http.StatusOK)
}

// grantTypes are the grants the server offers: the JWT bearer grant only
// when it trusts a workload issuer.
func (s *Server) grantTypes() []string {
	g := []string{"authorization_code", "refresh_token", "client_credentials"}
	if len(s.workloadIssuers) > 0 || len(s.idjagIssuers) > 0 {
		g = append(g, grantTypeJWTBearer)
	}
	if s.idjag != nil {
		g = append(g, grantTypeTokenExchange)
	}
	return g
}
