package proxy

import (
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/acme"
)

// acmeTLS replaces the test configuration's certificate files with ACME
// (a CA that refuses connections: nothing is obtained here).
func acmeTLS(src, extra string) string {
	return strings.Replace(src, "tls: {cert_file: c.pem, key_file: k.pem}",
		`tls: {acme: {email: ops@example.com, directory_url: "https://127.0.0.1:1/dir"`+extra+`}}`, 1)
}

// TestReloadKeepsTheACMEManager: under tls.acme a reload hands the new
// routes to the one certificate manager the proxy started with (one
// renewal loop, the certificates it holds); turning ACME on or off, or
// moving its http-01 listener, is refused as a restart-only change.
func TestReloadKeepsTheACMEManager(t *testing.T) {
	p, _ := newTestProxySource(t, acmeTLS(testConfig("", "", ""), ""), cannedUpstream{}, nil)
	m := p.acme
	if m == nil {
		t.Fatal("a configuration with tls.acme started no certificate manager")
	}
	if got := p.TLSConfig().NextProtos; !strings.Contains(strings.Join(got, ","), "acme-tls/1") {
		t.Errorf("NextProtos = %v: without acme-tls/1 the tls-alpn-01 challenge cannot be answered", got)
	}
	two := strings.Replace(acmeTLS(testConfig("", "", ""), ""), "routes:\n", "routes:\n  - {from: https://two.test, to: https://upstream.test, mcp: {server: {}}}\n", 1)
	if err := p.Reload(reloadConfig(t, p, two)); err != nil {
		t.Fatal(err)
	}
	if p.acme != m {
		t.Error("the reload replaced the certificate manager")
	}
	for _, c := range []struct{ src, want string }{
		{testConfig("", "", ""), "tls.acme changed"},
		{acmeTLS(testConfig("", "", ""), `, http_listen: ":80"`), "tls.acme.http_listen changed"},
	} {
		if err := p.Reload(reloadConfig(t, p, c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("reload: %v, want %q", err, c.want)
		}
	}
	if _, ok := p.current().routes["two.test"]; !ok {
		t.Error("a refused reload replaced the running configuration")
	}
	_ = (*acme.Manager)(nil)
}
