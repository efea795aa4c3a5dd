package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTLS creates empty certificate files so validation finds them; the
// contents are checked when the server starts, not here.
func writeTLS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"c.pem", "k.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const head = `tls: {cert_file: c.pem, key_file: k.pem}
identity_provider:
  issuer: https://idp.test
  client_id: proxy
  client_secret: ${SECRET}
`

func TestLoadValid(t *testing.T) {
	dir := writeTLS(t)
	src := head + `routes:
  - from: https://MCP.test
    to: https://upstream.test/base
    mcp:
      server: {}
`
	cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(src), env(map[string]string{"SECRET": "s3"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.IdentityProvider.ClientSecret, "s3"; got != want {
		t.Errorf("client_secret = %q, want %q", got, want)
	}
	r := cfg.Routes[0]
	if got, want := r.Key(), "mcp.test"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	if got, want := r.ToURL().String(), "https://upstream.test/base"; got != want {
		t.Errorf("ToURL() = %q, want %q", got, want)
	}
	if got, want := cfg.ListenAddr(), ":443"; got != want {
		t.Errorf("ListenAddr() = %q, want %q", got, want)
	}
	if got, want := cfg.Path("c.pem"), filepath.Join(dir, "c.pem"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := writeTLS(t)
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{
			name: "every mistake at once, in file order",
			src: head + `routes:
  - from: mcp.test
    mcp:
      sever: {}
  - from: https://a.test/path
    to: http://upstream.test
    mcp: {server: {}}
    extra: 1
`,
			env: map[string]string{"SECRET": "x"},
			want: []string{
				`config.yaml:7:5: routes[0].to: missing; name the remote MCP server, such as https://remote-mcp.provider.com`,
				`config.yaml:7:11: routes[0].from: "mcp.test" is not an absolute URL; write it as https://mcp.test`,
				`config.yaml:9:7: routes[0].mcp.sever: unknown field; did you mean "server"?`,
				`config.yaml:10:11: routes[1].from: "https://a.test/path" has a path or query; from names only the host, such as https://a.test`,
				`config.yaml:11:9: routes[1].to: "http://upstream.test" uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])`,
				`config.yaml:13:5: routes[1].extra: unknown field; known fields here: from, to, mcp, policy`,
			},
		},
		{
			name: "unset environment variable",
			src:  head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]\n",
			want: []string{`config.yaml:5:18: identity_provider.client_secret: environment variable SECRET is not set`},
		},
		{
			name: "duplicate host and wrong shapes",
			src: head + `listen: 443
routes:
  - {from: https://a.test, to: https://b.test, mcp: {server: {}}}
  - {from: https://A.test, to: https://b.test, mcp: {server: []}}
  - {from: "https://a.test:443", to: https://b.test, mcp: {server: {}}}
  - {from: "https://a.test.", to: https://b.test, mcp: {server: {}}}
  - {from: "https://a.test:8443", to: https://b.test, mcp: {server: {}}}
`,
			env: map[string]string{"SECRET": "x"},
			want: []string{
				`config.yaml:6:9: listen: "443" is not a host:port address, such as :443`,
				`config.yaml:9:12: routes[1].from: https://A.test is the same origin as the from of routes[0] (line 8, column 12); each route needs its own host`,
				`config.yaml:9:62: routes[1].mcp.server: must be a mapping of fields, not a list`,
				`config.yaml:10:12: routes[2].from: https://a.test:443 is the same origin as the from of routes[0] (line 8, column 12); each route needs its own host`,
				`config.yaml:11:12: routes[3].from: https://a.test. is the same origin as the from of routes[0] (line 8, column 12); each route needs its own host`,
			},
		},
		{
			name: "missing everything",
			src:  "{}\n",
			want: []string{
				`config.yaml:1:1: tls: missing; name the certificate and key the proxy serves, as tls.cert_file and tls.key_file`,
				`config.yaml:1:1: identity_provider: missing; users sign in through an OpenID Connect provider: set issuer, client_id and client_secret`,
				`config.yaml:1:1: routes: no routes; add one with from, to and mcp.server`,
			},
		},
		{
			name: "not yaml",
			src:  "routes: [\n",
			want: []string{`config.yaml:1:1: not valid YAML: did not find expected node content`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(filepath.Join(dir, "config.yaml"), []byte(tt.src), env(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			var got []string
			for _, e := range Errors(err) {
				e.File = filepath.Base(e.File)
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nfull error:\n%v", diff, err)
			}
		})
	}
}

func TestMissingTLSFileNamesIt(t *testing.T) {
	src := strings.Replace(head, "c.pem", "nope.pem", 1) + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]\n"
	_, err := Load(filepath.Join(writeTLS(t), "config.yaml"), []byte(src), env(map[string]string{"SECRET": "x"}))
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file: cannot read nope.pem: no such file or directory") {
		t.Fatalf("err = %v, want it to name the unreadable certificate", err)
	}
}

func TestServerOptionsValidation(t *testing.T) {
	dir := writeTLS(t)
	src := head + `allowed_client_id_domains: ["*.ok.test", "bad host"]
allowed_metadata_domains: ["*"]
routes:
  - from: https://a.test
    to: https://b.test
    mcp:
      server:
        upstream_oauth2:
          endpoint: {auth_url: http://as.test/authorize}
          scopes: ["a b"]
        dynamic_client_registration: true
        authorization_server_url: ftp://as.test
        allowed_origins: [app.test]
        max_request_bytes: -1
`
	_, err := Load(filepath.Join(dir, "config.yaml"), []byte(src), env(map[string]string{"SECRET": "x"}))
	var got []string
	for _, e := range Errors(err) {
		got = append(got, e.Path+": "+e.Msg)
	}
	want := []string{
		`allowed_client_id_domains[1]: "bad host" is not a host name or a *.example.com wildcard`,
		`allowed_metadata_domains[0]: "*" is not a host name or a *.example.com wildcard`,
		`routes[0].mcp.server.upstream_oauth2.client_id: missing; set the client id the remote authorization server issued, or remove upstream_oauth2 for auto-discovery`,
		`routes[0].mcp.server.upstream_oauth2.endpoint.token_url: missing; static endpoints need both auth_url and token_url`,
		`routes[0].mcp.server.upstream_oauth2.endpoint.auth_url: "http://as.test/authorize" uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])`,
		`routes[0].mcp.server.upstream_oauth2.scopes[0]: "a b" is not a scope; write one scope per list entry`,
		`routes[0].mcp.server.dynamic_client_registration: has no effect with upstream_oauth2.client_id: the proxy uses the registered client; remove one of them`,
		`routes[0].mcp.server.authorization_server_url: "ftp://as.test" has scheme "ftp"; use https`,
		`routes[0].mcp.server.allowed_origins[0]: "app.test" is not an origin; write scheme://host[:port], such as https://app.example.com`,
		`routes[0].mcp.server.max_request_bytes: -1 is negative; omit it for the default of 4194304`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestDomainAllowed(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"a.example.com", true}, {"example.com", false}, {"exact.test", true}, {"EXACT.test.", true}, {"evil-example.com", false}} {
		if got := DomainAllowed(tc.host, []string{"*.example.com", "exact.test"}); got != tc.ok {
			t.Errorf("DomainAllowed(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
}

func TestBindingAndStorageValidation(t *testing.T) {
	dir := writeTLS(t)
	for _, tc := range []struct {
		body string
		want string
	}{
		{"routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_token_binding: per_tenant}}}]",
			`routes[0].mcp.server.upstream_token_binding: "per_tenant" is not a binding mode; use per_user, per_session or service_account`},
		{"routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_token_binding: service_account, service_account: {admin: a}}}}]",
			`routes[0].mcp.server.upstream_token_binding: service_account shares one remote token among all users, so every use must be audited; set audit.file`},
		{"audit: {file: a.log}\nroutes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_token_binding: service_account}}}]",
			`routes[0].mcp.server.service_account: missing; say where the shared token comes from: service_account.admin (a user who consents once for everyone) or service_account.client_credentials: true`},
		{"storage: {type: disk}\nroutes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]",
			`storage.type: "disk" is not a store; use memory, file or redis`},
		{"storage: {type: redis}\nroutes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]",
			`storage.redis_url: missing; the redis store needs the server's URL, such as redis://redis.internal:6379/0, or redis_sentinel with the Sentinels' addresses`},
		{"routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_timeout: soon}}}]",
			`routes[0].mcp.server.upstream_timeout: "soon" is not a positive duration such as 30s or 2m`},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+tc.body+"\n"), env(map[string]string{"SECRET": "x"}))
		var got []string
		for _, e := range Errors(err) {
			got = append(got, e.Path+": "+e.Msg)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.body, got, tc.want)
		}
	}
}

// TestRedisSentinelValidation: the Sentinel block is checked field by
// field, every problem at once with its line and column.
func TestRedisSentinelValidation(t *testing.T) {
	dir := writeTLS(t)
	route := "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]\n"
	ok := head + `storage:
  type: redis
  redis_sentinel:
    master_name: mcp-proxy
    addresses: [sentinel-1.internal:26379, "[::1]:26380", 10.0.0.3:26379]
    password: ${SECRET}
` + route
	c, err := Load(filepath.Join(dir, "config.yaml"), []byte(ok), env(map[string]string{"SECRET": "x"}))
	if err != nil {
		t.Fatalf("a good Sentinel block: %v", err)
	}
	if s := c.Storage.RedisSentinel; s == nil || s.MasterName != "mcp-proxy" || len(s.Addresses) != 3 || s.Password != "x" {
		t.Errorf("decoded %+v", c.Storage.RedisSentinel)
	}
	for _, tc := range []struct {
		storage string
		want    []string
	}{
		{`storage:
  type: redis
  redis_sentinel:
    addresses: [sentinel-1.internal, "s2:26379", "s2:26379", ":26379", "s4:99999"]
    db: -1
`, []string{
			`9:5: storage.redis_sentinel.master_name: missing; set the name the Sentinels watch the primary under (their sentinel monitor <name> ...)`,
			`9:17: storage.redis_sentinel.addresses[0]: "sentinel-1.internal" is not a host:port address, such as sentinel-1.internal:26379`,
			`9:50: storage.redis_sentinel.addresses[2]: s2:26379 is listed twice (also as addresses[1]); list each Sentinel once`,
			`9:62: storage.redis_sentinel.addresses[3]: ":26379" is not a host:port address, such as sentinel-1.internal:26379`,
			`9:72: storage.redis_sentinel.addresses[4]: "s4:99999" is not a host:port address, such as sentinel-1.internal:26379`,
			`10:9: storage.redis_sentinel.db: -1 is not a database number; use 0 or more`,
		}},
		{`storage:
  type: redis
  redis_sentinel: {master_name: m}
`, []string{
			`8:19: storage.redis_sentinel.addresses: missing; list the Sentinels' host:port addresses, such as [sentinel-1.internal:26379, sentinel-2.internal:26379, sentinel-3.internal:26379]`,
		}},
		{`storage:
  type: redis
  redis_url: redis://r.internal:6379
  redis_sentinel: {master_name: m, addresses: ["s:26379"]}
`, []string{
			`9:19: storage.redis_sentinel: set redis_url (one Redis server) or redis_sentinel (a primary and replicas watched by Sentinels), not both`,
		}},
		{`storage:
  type: file
  redis_sentinel: {master_name: m, addresses: ["s:26379"]}
`, []string{
			`8:19: storage.redis_sentinel: only applies to type: redis`,
		}},
		{`storage:
  type: redis
  redis_sentinel: {master_name: m, adresses: ["s:26379"]}
`, []string{
			`8:36: storage.redis_sentinel.adresses: unknown field; did you mean "addresses"?`,
		}},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+tc.storage+route), env(map[string]string{"SECRET": "x"}))
		var got []string
		for _, e := range Errors(err) {
			got = append(got, fmt.Sprintf("%d:%d: %s: %s", e.Line, e.Column, e.Path, e.Msg))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tc.storage, diff)
		}
	}
}

// TestAudienceOptions: audience and omit_resource may stand alone in
// upstream_oauth2 (no pre-registered client), and an audience value with
// a space is refused.
func TestAudienceOptions(t *testing.T) {
	dir := writeTLS(t)
	ok := head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {dynamic_client_registration: true, upstream_oauth2: {audience: [https://b.test/mcp], omit_resource: true}}}}]\n"
	if _, err := Load(filepath.Join(dir, "config.yaml"), []byte(ok), env(map[string]string{"SECRET": "x"})); err != nil {
		t.Errorf("an audience-only block: %v", err)
	}
	bad := head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_oauth2: {audience: ['a b']}}}}]\n"
	_, err := Load(filepath.Join(dir, "config.yaml"), []byte(bad), env(map[string]string{"SECRET": "x"}))
	if err == nil || !strings.Contains(err.Error(), `upstream_oauth2.audience[0]: "a b" is not an audience`) {
		t.Errorf("an audience with a space: %v", err)
	}
}
