package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// discover is the troubleshooting doctor: it walks the same discovery the
// proxy runs for a route (probe, protected resource metadata, authorization
// server metadata, registration method) and prints what it found and a
// verdict an operator can act on. Exit 1 when a route with that remote
// server would not work as configured.
func discover(ctx context.Context, args []string, env Env) int {
	const summary = "Walks discovery for a remote MCP server URL as the proxy would and prints a verdict."
	fs := newFlagSet("discover", summary, env)
	// The usage line names the URL argument, once.
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mcp-proxy discover [flags] URL\n\n%s\n\nFlags:\n", summary)
		fs.PrintDefaults()
	}
	caFile := fs.String("ca-file", "", "also trust the CA certificates in this PEM `file`")
	var private, resolve stringList
	fs.Var(&private, "allow-private-host", "let this `host[:port]` resolve to a private or loopback address, on that port only (default 443; repeatable)")
	fs.Var(&resolve, "resolve", "connect to `host:port:address` instead of what DNS says (repeatable)")
	clientID := fs.String("client-id", "", "judge the route as if it had upstream_oauth2.client_id set to this `id`")
	asURL := fs.String("authorization-server-url", "", "judge the route as if it had mcp.server.authorization_server_url set to this `URL`")
	dcr := fs.Bool("dynamic-client-registration", false, "judge the route as if it had mcp.server.dynamic_client_registration: true")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "mcp-proxy discover: give exactly one URL: the remote MCP server, such as https://remote-mcp.provider.com/mcp")
		return ExitUsage
	}
	target := fs.Arg(0)

	opts := env.Network
	g := &netguard.Guard{Resolver: opts.Resolver, Dial: opts.Dial, AllowLoopback: opts.AllowLoopback}
	g.Trust(opts.TrustedHosts...)
	g.Trust(private...)
	if h := hostOf(target); h != "" {
		g.Trust(h) // the URL an operator types is as good as a route's to
	}
	if h := hostOf(*asURL); h != "" {
		g.Trust(h)
	}
	if len(resolve) > 0 {
		sr := &netguard.StaticResolver{Fallback: opts.Resolver}
		for _, r := range resolve {
			if err := sr.ParseResolve(r); err != nil {
				fmt.Fprintf(env.Stderr, "mcp-proxy discover: -resolve %v\n", err)
				return ExitUsage
			}
		}
		g.Resolver = sr
	}
	roots := opts.RootCAs
	if *caFile != "" {
		pem, err := os.ReadFile(env.path(*caFile))
		if err != nil {
			fmt.Fprintf(env.Stderr, "mcp-proxy discover: -ca-file: %v\n", err)
			return ExitFailed
		}
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil {
				roots = x509.NewCertPool()
			}
		} else {
			roots = roots.Clone()
		}
		roots.AppendCertsFromPEM(pem)
	}
	hc := &http.Client{
		Transport:     netguard.NewTransport(g.DialContext, netguard.TransportOptions{RootCAs: roots}),
		CheckRedirect: netguard.NoRedirects,
		Timeout:       30 * time.Second,
	}
	d, _, err := (&upstream.Discoverer{HTTP: hc}).Discover(ctx, target, *asURL)
	return report(env.Stdout, target, d, err, *clientID, *dcr)
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

func report(w io.Writer, target string, d *upstream.Discovery, err error, clientID string, dcr bool) int {
	line := func(k, v string) { fmt.Fprintf(w, "%-22s %s\n", k+":", v) }
	line("Remote MCP server", target)
	if err != nil {
		step := "discovery"
		if de, ok := err.(*upstream.Error); ok {
			step = de.Step
		}
		line("Failed at", step)
		fmt.Fprintf(w, "Verdict: FAIL. %v\n", err)
		return ExitFailed
	}
	if d.NoAuth {
		fmt.Fprintln(w, "Verdict: OK. The remote server asks for no authorization; the proxy forwards requests without a token.")
		return ExitOK
	}
	if d.MetadataURL != "" {
		line("Resource metadata", d.MetadataURL)
	} else {
		line("Resource metadata", "none; using the configured authorization server")
	}
	line("Resource", d.Resource)
	line("Authorization server", d.Issuer)
	scopes := "(none)"
	if len(d.Scopes) > 0 {
		scopes = strings.Join(d.Scopes, " ")
	}
	line("Scopes", scopes)
	line("PKCE S256", "supported")
	var reg []string
	if d.SupportsCIMD() {
		reg = append(reg, "Client ID Metadata Documents")
	}
	if d.AS.RegistrationEndpoint != "" {
		reg = append(reg, "dynamic registration at "+d.AS.RegistrationEndpoint)
	}
	if len(reg) == 0 {
		reg = append(reg, "pre-registered clients only")
	}
	line("Registration", strings.Join(reg, "; "))
	unverified := "that tokens carry the resource as their audience (RFC 8707); refresh token rotation"
	if !d.AS.AuthorizationResponseIssParameterSupported {
		unverified += "; the iss of authorization responses (RFC 9207), which the server does not advertise"
	}
	line("Not verified", unverified)
	switch {
	case clientID != "":
		fmt.Fprintf(w, "Verdict: OK. The route registers as the pre-registered client %s.\n", clientID)
	case d.SupportsCIMD():
		fmt.Fprintln(w, "Verdict: OK. A route with mcp.server: {} works: the proxy registers with its Client ID Metadata Document.")
	case dcr && d.AS.RegistrationEndpoint != "":
		fmt.Fprintln(w, "Verdict: OK. The proxy registers the route dynamically, as dynamic_client_registration allows.")
	case d.AS.RegistrationEndpoint != "":
		fmt.Fprintln(w, "Verdict: NEEDS CONFIGURATION. The authorization server does not accept Client ID Metadata Documents. Set mcp.server.dynamic_client_registration: true, or register the proxy and set mcp.server.upstream_oauth2.client_id.")
		return ExitFailed
	default:
		fmt.Fprintln(w, "Verdict: NEEDS CONFIGURATION. The authorization server does not accept Client ID Metadata Documents or dynamic registration. Register the proxy there and set mcp.server.upstream_oauth2.client_id.")
		return ExitFailed
	}
	return ExitOK
}
