package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
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
				`config.yaml:1:1: tls: missing; name the certificate and key the proxy serves, as tls.cert_file and tls.key_file, or obtain them with tls.acme`,
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

const acmeTail = `identity_provider:
  issuer: https://idp.test
  client_id: proxy
  client_secret: x
routes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]
`

func TestACMEValid(t *testing.T) {
	dir := writeTLS(t)
	for _, c := range []struct {
		src           string
		directory     string
		tlsALPN, http bool
	}{
		{"tls: {acme: {email: ops@example.com}}\n", DefaultACMEDirectory, true, false},
		{"tls: {acme: {email: ops@example.com, http_listen: \":80\"}}\n", DefaultACMEDirectory, true, true},
		{"tls: {acme: {email: ops@example.com, directory_url: https://acme.test/dir, ca_file: c.pem, http_listen: \":80\", challenges: [http-01]}}\n",
			"https://acme.test/dir", false, true},
	} {
		cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(c.src+acmeTail), nil)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		a := cfg.TLS.ACME
		if a.Directory() != c.directory || a.Answers(ChallengeTLSALPN) != c.tlsALPN || a.Answers(ChallengeHTTP) != c.http {
			t.Errorf("%s: directory %s, tls-alpn-01 %v, http-01 %v; want %s, %v, %v", c.src,
				a.Directory(), a.Answers(ChallengeTLSALPN), a.Answers(ChallengeHTTP), c.directory, c.tlsALPN, c.http)
		}
	}
}

func TestACMEErrors(t *testing.T) {
	dir := writeTLS(t)
	for _, c := range []struct {
		src  string
		want []string
	}{
		{"tls:\n  cert_file: c.pem\n  acme: {email: ops@example.com}\n", []string{
			`config.yaml:3:9: tls.acme: cert_file and key_file do not apply with acme, which obtains the certificates itself; remove one or the other`}},
		{"tls:\n  acme: {}\n", []string{
			`config.yaml:2:9: tls.acme.email: missing; set the address the certificate authority writes to about your certificates, such as ops@example.com`}},
		{"tls:\n  acme:\n    email: ops\n    directory_url: http://acme.test/dir\n    ca_file: none.pem\n    http_listen: \"80\"\n    challenges: [dns-01, http-01, dns-01]\n    emial: x\n", []string{
			`config.yaml:3:12: tls.acme.email: "ops" is not an email address, such as ops@example.com`,
			`config.yaml:4:20: tls.acme.directory_url: "http://acme.test/dir" uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])`,
			`config.yaml:5:14: tls.acme.ca_file: cannot read none.pem: no such file or directory`,
			`config.yaml:6:18: tls.acme.http_listen: "80" is not a host:port address, such as :80`,
			`config.yaml:7:18: tls.acme.challenges[0]: "dns-01" is not a challenge the proxy answers; use tls-alpn-01 or http-01`,
			`config.yaml:7:35: tls.acme.challenges[2]: "dns-01" is not a challenge the proxy answers; use tls-alpn-01 or http-01`,
			`config.yaml:8:5: tls.acme.emial: unknown field; did you mean "email"?`,
		}},
		{"tls:\n  acme: {email: ops@example.com, challenges: [http-01, tls-alpn-01, tls-alpn-01]}\n", []string{
			`config.yaml:2:47: tls.acme.challenges[0]: http-01 is answered on a plain HTTP listener: set tls.acme.http_listen, such as ":80"`,
			`config.yaml:2:69: tls.acme.challenges[2]: tls-alpn-01 is listed twice; keep one`,
		}},
		{"tls:\n  acme: {email: ops@example.com, challenges: []}\n", []string{
			`config.yaml:2:46: tls.acme.challenges: empty; list tls-alpn-01, http-01 or both, or leave it out for the default`,
		}},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(c.src+acmeTail), nil)
		var got []string
		for _, e := range Errors(err) {
			e.File = filepath.Base(e.File)
			got = append(got, e.Error())
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", c.src, diff)
		}
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
			`routes[0].mcp.server.service_account: missing; say where the shared token comes from: service_account.admin (a user who consents once for everyone), service_account.client_credentials: true or service_account.workload_identity`},
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

// TestPrivateKeyFile: upstream_oauth2.private_key_file names a key the
// proxy can sign client assertions with, or the file is refused with its
// position and what is wrong; a valid key is provisioned, and it is enough
// for a client credentials service account.
func TestPrivateKeyFile(t *testing.T) {
	dir := writeTLS(t)
	writeKey := func(name string, key any, pemType string) {
		t.Helper()
		var der []byte
		var err error
		switch pemType {
		case "PRIVATE KEY":
			der, err = x509.MarshalPKCS8PrivateKey(key)
		case "EC PRIVATE KEY":
			der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		default:
			der = []byte("not a key")
		}
		if err != nil {
			t.Fatal(err)
		}
		b := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	writeKey("p256.pem", p256, "PRIVATE KEY")
	writeKey("sec1.pem", p256, "EC PRIVATE KEY")
	writeKey("p384.pem", p384, "PRIVATE KEY")
	writeKey("encrypted.pem", nil, "ENCRYPTED PRIVATE KEY")
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	route := func(upstream string) string {
		return "audit: {file: a.log}\nroutes: [{from: https://a.test, to: https://b.test, mcp: {server: {upstream_token_binding: service_account, service_account: {client_credentials: true}, upstream_oauth2: " + upstream + "}}}]\n"
	}
	for _, file := range []string{"p256.pem", "sec1.pem", filepath.Join(dir, "p256.pem")} {
		cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route("{client_id: svc, private_key_file: "+file+", private_key_id: k1}")), env(map[string]string{"SECRET": "x"}))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := cfg.Routes[0].Server().UpstreamOAuth2.PrivateKey(); got == nil || !got.Public().(*ecdsa.PublicKey).Equal(p256.Public()) {
			t.Errorf("%s: PrivateKey() = %v, want the file's key", file, got)
		}
	}
	for _, tc := range []struct{ upstream, want string }{
		{"{client_id: svc, private_key_file: nope.pem}", `routes[0].mcp.server.upstream_oauth2.private_key_file: cannot read nope.pem: no such file or directory`},
		{"{client_id: svc, private_key_file: cert.pem}", `routes[0].mcp.server.upstream_oauth2.private_key_file: cert.pem holds no PEM private key; write the key as -----BEGIN PRIVATE KEY----- (PKCS #8), EC PRIVATE KEY or RSA PRIVATE KEY`},
		{"{client_id: svc, private_key_file: p384.pem}", `routes[0].mcp.server.upstream_oauth2.private_key_file: p384.pem holds an EC key on P-384; use an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)`},
		{"{client_id: svc, private_key_file: encrypted.pem}", `routes[0].mcp.server.upstream_oauth2.private_key_file: encrypted.pem holds an encrypted private key; the proxy needs it unencrypted (protect the file with its permissions)`},
		{"{client_id: svc, client_secret: s, private_key_file: p256.pem}", `routes[0].mcp.server.upstream_oauth2: client_secret and private_key_file are two ways for the proxy to authenticate; set one`},
		{"{client_id: svc, client_secret: s, private_key_id: k1}", `routes[0].mcp.server.upstream_oauth2.private_key_id: only applies with private_key_file`},
		{"{client_id: svc}", `routes[0].mcp.server.service_account.client_credentials: needs upstream_oauth2.client_id and its client_secret or private_key_file: the client credentials grant authenticates the proxy's registered client`},
	} {
		_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+route(tc.upstream)), env(map[string]string{"SECRET": "x"}))
		var got []string
		for _, e := range Errors(err) {
			got = append(got, e.Path+": "+e.Msg)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.upstream, got, tc.want)
		}
	}
}

// TestDPoPOption: upstream_oauth2.dpop takes auto, required or off, may
// stand alone in the block, defaults to auto, and names its position and
// the values it takes when it is anything else; with a pre-registered
// client, dynamic_client_registration is still refused.
func TestDPoPOption(t *testing.T) {
	dir := writeTLS(t)
	load := func(block string) (*Config, error) {
		y := head + "routes: [{from: https://a.test, to: https://b.test, mcp: {server: {dynamic_client_registration: true" + block + "}}}]\n"
		return Load(filepath.Join(dir, "config.yaml"), []byte(y), env(map[string]string{"SECRET": "x"}))
	}
	for _, tc := range []struct {
		block string
		want  DPoPMode
	}{{"", DPoPAuto}, {", upstream_oauth2: {dpop: auto}", DPoPAuto}, {", upstream_oauth2: {dpop: required}", DPoPRequired}, {", upstream_oauth2: {dpop: off}", DPoPOff}} {
		cfg, err := load(tc.block)
		if err != nil {
			t.Fatalf("%q: %v", tc.block, err)
		}
		if got := cfg.Routes[0].Server().UpstreamOAuth2.DPoPMode(); got != tc.want {
			t.Errorf("%q: mode %s, want %s", tc.block, got, tc.want)
		}
	}
	_, err := load(", upstream_oauth2: {dpop: yes}")
	if err == nil || !strings.Contains(err.Error(), `routes[0].mcp.server.upstream_oauth2.dpop: "yes" is not a DPoP mode; use auto (DPoP when the remote server asks for it), required or off`) {
		t.Errorf("dpop: yes: %v", err)
	}
	_, err = load(", upstream_oauth2: {client_id: c, dpop: required}")
	if err == nil || !strings.Contains(err.Error(), "dynamic_client_registration: has no effect with upstream_oauth2.client_id") {
		t.Errorf("client_id, dpop and dynamic_client_registration: %v", err)
	}
}
