// Package idp is the operator's identity provider as every harness stack
// runs it: mockas with one confidential client, mcp-proxy's, whose sign-in
// callback is at each of the proxy's route hosts. The conformance stack,
// the Quick Start test, make bench and make load all configure it here.
package idp

import "github.com/mcp-proxy/mcp-proxy/mockas"

// ClientID is the proxy's client id at the identity provider, as the
// docs' configurations name it (identity_provider.client_id).
const ClientID = "mcp-proxy"

// CallbackPath is where the proxy receives a user's sign-in.
const CallbackPath = "/.mcp-proxy/login/callback"

// Config is mockas's configuration as the identity provider at
// https://host, for a proxy answering for proxyHosts whose client
// authenticates with secret. It accepts no Client ID Metadata Document: an
// operator registers the proxy at their identity provider. The caller adds
// what its stack needs (users, logger, resolver and dialer, trusted CAs).
func Config(host, secret string, proxyHosts ...string) mockas.Config {
	callbacks := make([]string, len(proxyHosts))
	for i, h := range proxyHosts {
		callbacks[i] = "https://" + h + CallbackPath
	}
	return mockas.Config{
		Issuer:      "https://" + host,
		Clients:     []mockas.Client{{ID: ClientID, Secret: secret, Name: "mcp-proxy", RedirectURIs: callbacks}},
		DisableCIMD: true,
	}
}
