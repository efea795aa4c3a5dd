package config

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestEnterprise: an enterprise route is per user, authenticates the
// proxy's client at the remote authorization server, and uses discovery;
// each problem is reported with its position.
func TestEnterprise(t *testing.T) {
	dir := writeTLS(t)
	route := func(server string) string {
		return "routes:\n  - from: https://a.test\n    to: https://b.test\n    mcp:\n      server:\n" + server
	}
	good := "        enterprise: {}\n        upstream_oauth2: {client_id: e, client_secret: s}\n"
	cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route(good)), env(map[string]string{"SECRET": "x"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Routes[0].Server().Enterprise == nil {
		t.Fatal("the enterprise block was lost")
	}
	for _, tc := range []struct{ server, want string }{
		{"        enterprise: {}\n",
			"routes[0].mcp.server.enterprise: needs upstream_oauth2.client_id with its client_secret or private_key_file: the remote authorization server accepts the identity assertion only from the client registered there for enterprise access"},
		{"        enterprise: {}\n        upstream_oauth2: {client_id: e}\n",
			"routes[0].mcp.server.upstream_oauth2: needs client_secret or private_key_file beside client_id: the JWT bearer grant of an enterprise route authenticates the proxy's client at the remote authorization server"},
		{"        enterprise: {token_endpoint: idp.test/token}\n        upstream_oauth2: {client_id: e, client_secret: s}\n",
			`routes[0].mcp.server.enterprise.token_endpoint: "idp.test/token" is not an absolute URL; write it as https://idp.test/token`},
		{"        enterprise: {client_secret: s}\n        upstream_oauth2: {client_id: e, client_secret: s}\n",
			"routes[0].mcp.server.enterprise.client_id: missing beside client_secret; name the client the secret belongs to, or remove both to use identity_provider's client"},
		{"        upstream_token_binding: per_session\n        enterprise: {}\n        upstream_oauth2: {client_id: e, client_secret: s, endpoint: {auth_url: https://as.test/a, token_url: https://as.test/t}}\n",
			"routes[0].mcp.server.upstream_oauth2.endpoint: cannot be used with enterprise: the identity assertion names the remote authorization server by its issuer, which only discovery gives; remove endpoint"},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route(tc.server)), env(map[string]string{"SECRET": "x"}))
		var got []string
		for _, e := range Errors(err) {
			got = append(got, fmt.Sprintf("%s: %s", e.Path, e.Msg))
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.server, got, tc.want)
		}
	}
	// Positions: the error points at the enterprise block.
	_, err = Load(filepath.Join(dir, "config.yaml"), []byte(head+"audit: {file: a.log}\n"+route("        upstream_token_binding: service_account\n        service_account: {admin: a}\n        enterprise: {}\n        upstream_oauth2: {client_id: e, client_secret: s}\n")), env(map[string]string{"SECRET": "x"}))
	errs := Errors(err)
	if len(errs) != 1 || errs[0].Line == 0 || errs[0].Path != "routes[0].mcp.server.enterprise" {
		t.Fatalf("service_account with enterprise: %v", err)
	}
	if want := "gets each user's own remote token from their identity provider's assertion, so it cannot be shared: use upstream_token_binding per_user or per_session, or remove enterprise"; errs[0].Msg != want {
		t.Errorf("got %q", errs[0].Msg)
	}
	if l := errs[0].Line; l != 14 {
		t.Errorf("line %d:%d, want 14 (the enterprise line)", l, errs[0].Column)
	}
}
