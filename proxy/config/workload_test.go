package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWorkloadIdentity: a workload identity route names a readable file
// holding a JWT, is the service account's only source, and presents no
// client secret; each problem is reported with its position.
func TestWorkloadIdentity(t *testing.T) {
	dir := writeTLS(t)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage"), []byte("-----BEGIN CERTIFICATE-----"), 0o600); err != nil {
		t.Fatal(err)
	}
	route := func(sa, upstream string) string {
		return "audit: {file: a.log}\nroutes:\n  - from: https://a.test\n    to: https://b.test\n    mcp:\n      server:\n        upstream_token_binding: service_account\n        service_account: " + sa + "\n" + upstream
	}
	cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route("{workload_identity: {token_file: token}}", "        upstream_oauth2: {client_id: w}\n")), env(map[string]string{"SECRET": "x"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.Routes[0].Server().ServiceAccount.WorkloadIdentity.Path(), filepath.Join(dir, "token"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	for _, tc := range []struct{ sa, upstream, want string }{
		{"{workload_identity: {token_file: nope}}", "", "config.yaml:13:59: routes[0].mcp.server.service_account.workload_identity.token_file: cannot read nope: no such file or directory; the proxy must be able to read the workload's token when it starts"},
		{"{workload_identity: {token_file: garbage}}", "", "config.yaml:13:59: routes[0].mcp.server.service_account.workload_identity.token_file: garbage does not hold a JWT (three base64url parts separated by dots); point it at the workload's token itself"},
		{"{workload_identity: {}}", "", "config.yaml:13:46: routes[0].mcp.server.service_account.workload_identity.token_file: missing; name the file that holds the workload's JWT, such as a projected service account token"},
		{"{workload_identity: {token_file: token}, client_credentials: true}", "", "config.yaml:13:26: routes[0].mcp.server.service_account: admin, client_credentials and workload_identity are three sources of the shared token; set one"},
		{"{workload_identity: {token_file: token}}", "        upstream_oauth2: {client_id: w, client_secret: s}\n", "config.yaml:13:46: routes[0].mcp.server.service_account.workload_identity: presents the workload's JWT as the only credential; remove upstream_oauth2.client_secret and upstream_oauth2.private_key_file (upstream_oauth2.client_id may stay, sent as the public client's id)"},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route(tc.sa, tc.upstream)), env(map[string]string{"SECRET": "x"}))
		var got []string
		for _, e := range Errors(err) {
			got = append(got, fmt.Sprintf("config.yaml:%d:%d: %s: %s", e.Line, e.Column, e.Path, e.Msg))
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %s:\n got %q\nwant %q", tc.sa, tc.upstream, got, tc.want)
		}
	}
}
