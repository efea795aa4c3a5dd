package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// demoClient is the MCP client a person plays in the printed walk.
const demoClient = "demo-browser"

// guide is what the demo prints once it serves: how to reach its names at
// its address with curl and Chromium, and a walk from the first request
// to whoami that works exactly as printed.
type guide struct {
	addr, caPath, logPath string
	spki                  string // base64 SHA-256 of the serving certificate's public key
	verifier, state       string
}

func newGuide(addr, caPath, logPath string, cert tls.Certificate) (*guide, error) {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return &guide{
		addr: addr, caPath: caPath, logPath: logPath,
		spki:     base64.StdEncoding.EncodeToString(sum[:]),
		verifier: rand.Text() + rand.Text(),
		state:    rand.Text(),
	}, nil
}

// curl is the curl command that reaches every name of the stack at the
// demo's address: --connect-to sends each host's port 443 there, so URLs,
// Host headers and TLS names stay the docs' own.
func (g *guide) curl() string {
	return fmt.Sprintf("curl --connect-to ::%s --cacert %s", g.addr, g.caPath)
}

// chromium is the Chromium command line that does the same: each name
// maps to the address, port included, and the serving certificate is
// trusted by its key (the flag needs a user data directory of its own).
func (g *guide) chromium() string {
	var rules []string
	for _, n := range stack.Names {
		rules = append(rules, "MAP "+n+" "+g.addr)
	}
	// Chromium refuses to run as root with its sandbox on.
	noSandbox := ""
	if os.Geteuid() == 0 {
		noSandbox = " --no-sandbox"
	}
	return fmt.Sprintf(`chromium%s --user-data-dir="$(mktemp -d)" --host-resolver-rules=%q --ignore-certificate-errors-spki-list=%s`,
		noSandbox, strings.Join(rules, ","), g.spki)
}

// authorizeURL is where the person's MCP client sends the browser.
func (g *guide) authorizeURL() string {
	sum := sha256.Sum256([]byte(g.verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientmeta.MetadataURL(stack.ClientHost, demoClient)},
		"redirect_uri":          {clientmeta.RedirectURL(stack.ClientHost, demoClient)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {g.state},
		"resource":              {"https://" + stack.ProxyHost + "/mcp"},
	}
	return "https://" + stack.ProxyHost + "/.mcp-proxy/authorize?" + q.Encode()
}

func (g *guide) text() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	mcp := "https://" + stack.ProxyHost + "/mcp"
	p("")
	p("The stack answers on %s for every one of its names: %s.", g.addr, strings.Join(stack.Names, ", "))
	p("The URLs stay the docs' own (https, port 443); map the names and port 443 to %s, not the URLs:", g.addr)
	p("  curl:     %s URL", g.curl())
	p("  Chromium: %s URL", g.chromium())
	if _, port, _ := net.SplitHostPort(g.addr); port == "443" {
		host, _, _ := net.SplitHostPort(g.addr)
		p("  or, since the port is 443, map the names in /etc/hosts (%s %s) and trust %s", host, strings.Join(stack.Names, " "), g.caPath)
	}
	p("The run's CA certificate is %s (for Go programs: SSL_CERT_FILE=%s).", g.caPath, g.caPath)
	p("The proxy's log is %s.", g.logPath)
	p("")
	p("Demo users: alice (password alice-password) and bob (password bob-password). Each signs in twice on the")
	p("way: at %s, the operator's identity provider, and at %s, the remote server's", stack.IdPHost, stack.ASHost)
	p("authorization server, then approves the consent page of each.")
	p("Client ids: the proxy accepts MCP clients whose client id is a metadata document at")
	p("%s (NAME: any name; the stack publishes one for each, with the", clientmeta.MetadataURL(stack.ClientHost, "NAME"))
	p("redirect URI %s, which shows the code it receives).", clientmeta.RedirectURL(stack.ClientHost, "NAME"))
	p("Client ids at other hosts are refused: the demo's proxy reaches no host outside the stack.")
	p("")
	p("A walk by hand in bash, as the MCP client %s:", demoClient)
	p("")
	p("  1. The proxy asks for a token and says where to get one:")
	p("       %s -si -X POST %s | grep -i ^www-authenticate", g.curl(), mcp)
	p("  2. Open the authorization request in Chromium; sign in as alice and approve each page it shows")
	p("     (alice consented at %s in the walkthrough above, so that step is skipped; sign in as", stack.ASHost)
	p("     bob to see it too):")
	p("       %s '%s'", g.chromium(), g.authorizeURL())
	p("     The last page, at %s, shows code=...; copy it.", clientmeta.RedirectURL(stack.ClientHost, demoClient))
	p("  3. Exchange the code for the MCP client's token (the command holds this run's PKCE verifier, which")
	p("     fits every code of the request above; a code works once):")
	p("       CODE=<the code>")
	p("       TOKEN=$(%s -s https://%s/.mcp-proxy/token -d grant_type=authorization_code -d \"code=$CODE\" \\", g.curl(), stack.ProxyHost)
	p("         -d code_verifier=%s --data-urlencode client_id=%s \\", g.verifier, clientmeta.MetadataURL(stack.ClientHost, demoClient))
	p("         --data-urlencode redirect_uri=%s | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')", clientmeta.RedirectURL(stack.ClientHost, demoClient))
	p("  4. Open an MCP session and call whoami through the proxy:")
	p("       MCP=(%s -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')", g.curl())
	p("       SESSION=$(\"${MCP[@]}\" -D - -o /dev/null %s -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"curl\",\"version\":\"1\"}}}' | tr -d '\\r' | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')", mcp)
	p("       \"${MCP[@]}\" -H \"Mcp-Session-Id: $SESSION\" %s -d '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}'", mcp)
	p("       \"${MCP[@]}\" -H \"Mcp-Session-Id: $SESSION\" %s -d '{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"whoami\",\"arguments\":{}}}'", mcp)
	p("     The answer names the user you signed in as (subject alice or bob) and the audience https://%s/mcp.", stack.UpstreamHost)
	return b.String()
}
