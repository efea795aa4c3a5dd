package config

// Enterprise is an enterprise route's exchange at the identity provider
// (enterprise-managed authorization, SEP-990).
type Enterprise struct {
	// The identity provider's endpoint where the proxy exchanges a user's
	// ID token for an identity assertion (RFC 8693 token exchange).
	// Default: the token endpoint of identity_provider's discovery
	// document.
	TokenEndpoint string `yaml:"token_endpoint"`

	// ClientID is the proxy's client at the identity provider for the
	// exchange. Default: identity_provider.client_id, with its
	// client_secret.
	ClientID string `yaml:"client_id"`

	// Authenticates client_id (HTTP Basic). Empty beside a client_id of
	// its own: a public client, which sends only its id.
	ClientSecret string `yaml:"client_secret"`
}

// validate checks an enterprise route: per-user binding, a client
// registered at the remote authorization server that authenticates, and
// discovery (the ID-JAG's audience is the remote authorization server's
// issuer, which static endpoints do not name).
func (e *Enterprise) validate(p string, s *MCPServer, d *decoder) {
	ep := p + ".enterprise"
	if s.Binding() == BindingServiceAccount {
		d.errorf(d.pos(ep), ep, "gets each user's own remote token from their identity provider's assertion, so it cannot be shared: use upstream_token_binding per_user or per_session, or remove enterprise")
	}
	up := s.UpstreamOAuth2
	switch {
	case up == nil || up.ClientID == "":
		d.errorf(d.pos(ep), ep, "needs upstream_oauth2.client_id with its client_secret or private_key_file: the remote authorization server accepts the identity assertion only from the client registered there for enterprise access")
	case up.ClientSecret == "" && up.PrivateKeyFile == "":
		d.errorf(d.pos(p+".upstream_oauth2.client_id"), p+".upstream_oauth2", "needs client_secret or private_key_file beside client_id: the JWT bearer grant of an enterprise route authenticates the proxy's client at the remote authorization server")
	case up.Endpoint != nil:
		d.errorf(d.pos(p+".upstream_oauth2.endpoint"), p+".upstream_oauth2.endpoint", "cannot be used with enterprise: the identity assertion names the remote authorization server by its issuer, which only discovery gives; remove endpoint")
	}
	if e.TokenEndpoint != "" {
		if _, msg := parseServiceURL(e.TokenEndpoint); msg != "" {
			d.errorf(d.pos(ep+".token_endpoint"), ep+".token_endpoint", "%s", msg)
		}
	}
	if e.ClientSecret != "" && e.ClientID == "" {
		d.errorf(d.pos(ep+".client_secret"), ep+".client_id", "missing beside client_secret; name the client the secret belongs to, or remove both to use identity_provider's client")
	}
}
