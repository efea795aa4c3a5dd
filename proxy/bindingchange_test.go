package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/authserver"
	"github.com/mcp-proxy/mcp-proxy/proxy/binding"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// TestAnotherBindingsGrantIsNotReissued: after the operator changed a
// route from per_user to per_session, a code or refresh token whose grant
// names a per_user key is refused at the token endpoint (invalid_grant), so
// the MCP client authorizes again instead of getting a grant every request
// would refuse.
func TestAnotherBindingsGrantIsNotReissued(t *testing.T) {
	p, now := newTestProxy(t, "upstream_token_binding: per_session")
	oldKey := binding.Key(config.BindingPerUser, "mcp.test", "alice", "", "https://upstream.test/mcp")
	if err := p.putCode("the-code", &authserver.Code{
		Request: authserver.AuthRequest{Route: "mcp.test", ClientID: testClient, RedirectURI: testRedirect,
			CodeChallenge: challengeOf(testVerifier), Resource: "https://mcp.test/mcp", Upstream: "https://upstream.test/mcp"},
		Subject: "alice", BindingKey: oldKey, Expires: now.Add(authserver.CodeTTL),
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.putRefreshToken("the-refresh", &authserver.RefreshToken{
		Grant: &request.Grant{ID: "g", Route: "mcp.test", Subject: "alice", ClientID: testClient, BindingKey: oldKey,
			Resource: "https://mcp.test/mcp", Upstream: "https://upstream.test/mcp"},
		Expires: now.Add(authserver.RefreshTokenTTL),
	}); err != nil {
		t.Fatal(err)
	}
	for name, form := range map[string]url.Values{
		"code":          good(),
		"refresh token": {"grant_type": {"refresh_token"}, "refresh_token": {"the-refresh"}, "client_id": {testClient}},
	} {
		rec := do(p, tokenRequest(form))
		var body tokenError
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusBadRequest || body.Error != "invalid_grant" ||
			body.Description != "the route's upstream_token_binding changed since this was issued; authorize again" {
			t.Errorf("%s of a per_user grant on a per_session route: %d %s", name, rec.Code, rec.Body)
		}
	}
}
