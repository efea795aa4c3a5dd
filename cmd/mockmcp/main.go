// Command mockmcp runs the mock MCP server of the conformance harness: an
// OAuth-protected MCP server (package mockmcp) on HTTPS. It only wires flags
// to the library; see the package documentation for the endpoints.
//
//	mockmcp -resource https://remote-mcp.provider.com/mcp -as https://auth.provider.com \
//	        -tls-cert cert.pem -tls-key key.pem -ca-file ca.pem
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mockmcp:", err)
		os.Exit(2)
	}
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// options are the parsed flags.
type options struct {
	resource, prm, scopes, challengeScopes, resourceName *string
	listen, tlsCert, tlsKey, caFile, controlSecret       *string
	noAuth, allowAnyHost, jsonLogs                       *bool
	issuers, toolScopes                                  listFlag
	challengeScopesSet                                   bool
}

// newFlagSet declares every flag with the text -h prints for it.
func newFlagSet(stderr io.Writer) (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet("mockmcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{
		resource:        fs.String("resource", "", "the server's resource `URL`, such as https://remote-mcp.provider.com/mcp (required); MCP is served at its path and tokens must name it in aud"),
		noAuth:          fs.Bool("no-auth", false, "start as an internal upstream that needs no OAuth: no token check, no protected resource metadata (PATCH /.test/settings no_auth switches it)"),
		prm:             fs.String("prm", "path", "`location` of the protected resource metadata at start: path (/.well-known/oauth-protected-resource/<path>, resource = -resource), root (/.well-known/oauth-protected-resource, resource = its origin) or absent (none, and no resource_metadata in the challenge); PATCH /.test/settings prm switches it"),
		scopes:          fs.String("scopes", "", "comma-separated `scopes` advertised as scopes_supported and, unless -challenge-scopes is given, sent in the 401 challenge"),
		challengeScopes: fs.String("challenge-scopes", "", "comma-separated `scopes` for the challenge's scope parameter; given empty, the challenge has no scope (PATCH /.test/settings challenge_scopes changes them)"),
		resourceName:    fs.String("resource-name", "", "`name` published as resource_name in the metadata (default \"Mock MCP server\")"),
		allowAnyHost:    fs.Bool("allow-any-host", false, "accept any Host header; by default a Host that does not name the resource URL's host gets 421"),
		listen:          fs.String("listen", ":8443", "`address` to listen on"),
		tlsCert:         fs.String("tls-cert", "", "TLS certificate chain `file` (PEM), with -tls-key; without both, plain http is allowed only on a loopback -listen address"),
		tlsKey:          fs.String("tls-key", "", "TLS private key `file` (PEM), with -tls-cert"),
		caFile:          fs.String("ca-file", "", "PEM `file` of CA certificates trusted, besides the system roots, when fetching the authorization servers' metadata and keys"),
		controlSecret:   fs.String("control-secret", "", "shared `secret` guarding the test-control API under /.test/, sent as Authorization: Bearer SECRET (default $MOCKMCP_CONTROL_SECRET; empty turns the API off)"),
		jsonLogs:        fs.Bool("log-json", true, "log JSON lines to standard error (false: text)"),
	}
	fs.Var(&o.issuers, "as", "issuer `URL` of an authorization server whose tokens are accepted (repeatable; required unless -no-auth)")
	fs.Var(&o.toolScopes, "tool-scope", "scopes a token needs to call a tool, as `TOOL=SCOPE[,SCOPE...]`; a call without them gets 403 insufficient_scope (repeatable; PATCH /.test/settings tool_scopes changes them)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: mockmcp -resource URL -as ISSUER [flags]

mockmcp is the conformance harness's mock MCP server: an OAuth-protected
resource server on Streamable HTTP (official MCP Go SDK). It verifies bearer
JWTs against each -as issuer's JWKS with audience = -resource, and offers
the tools whoami, echo and slow.

Endpoints: the resource path (MCP), /.well-known/oauth-protected-resource
[/path] (metadata), /healthz. With -control-secret, a test-control API
under /.test/: events, counters, faults, settings, tokens; see
docs/test-doubles.md.

Example:
  mockmcp -resource https://remote-mcp.provider.com/mcp -as https://auth.provider.com \
    -scopes mcp:read,mcp:write -tls-cert cert.pem -tls-key key.pem -ca-file ca.pem \
    -control-secret s3cret

Flags:
`)
		fs.PrintDefaults()
	}
	return fs, o
}

// config turns the flags into the server's configuration.
func config(o *options, log *slog.Logger) (mockmcp.Config, error) {
	loc, err := mockmcp.ParsePRMLocation(*o.prm)
	if err != nil {
		return mockmcp.Config{}, fmt.Errorf("-prm: %w", err)
	}
	cfg := mockmcp.Config{
		ResourceURL:          *o.resource,
		AuthorizationServers: o.issuers,
		NoAuth:               *o.noAuth,
		PRM:                  loc,
		ScopesSupported:      splitList(*o.scopes),
		ResourceName:         *o.resourceName,
		AllowAnyHost:         *o.allowAnyHost,
		ControlSecret:        *o.controlSecret,
		Logger:               log,
	}
	if o.challengeScopesSet {
		cfg.ChallengeScopes = append([]string{}, splitList(*o.challengeScopes)...)
	}
	if cfg.ControlSecret == "" {
		cfg.ControlSecret = os.Getenv("MOCKMCP_CONTROL_SECRET")
	}
	for _, ts := range o.toolScopes {
		tool, list, ok := strings.Cut(ts, "=")
		if !ok || tool == "" || len(splitList(list)) == 0 {
			return mockmcp.Config{}, fmt.Errorf("-tool-scope %q: want TOOL=SCOPE[,SCOPE...]", ts)
		}
		if cfg.ToolScopes == nil {
			cfg.ToolScopes = map[string][]string{}
		}
		cfg.ToolScopes[tool] = append(cfg.ToolScopes[tool], splitList(list)...)
	}

	var roots *x509.CertPool
	if *o.caFile != "" {
		pem, err := os.ReadFile(*o.caFile)
		if err != nil {
			return mockmcp.Config{}, fmt.Errorf("-ca-file: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return mockmcp.Config{}, fmt.Errorf("-ca-file %s: no PEM certificates", *o.caFile)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	cfg.HTTPClient = &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		Timeout: 15 * time.Second,
	}
	return cfg, nil
}

// run serves until ctx ends. ready, when not nil, learns the address the
// server listens on.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	fs, o := newFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.challengeScopesSet = o.challengeScopesSet || f.Name == "challenge-scopes" })

	var handler slog.Handler = slog.NewJSONHandler(stderr, nil)
	if !*o.jsonLogs {
		handler = slog.NewTextHandler(stderr, nil)
	}
	log := slog.New(handler)

	cfg, err := config(o, log)
	if err != nil {
		return err
	}
	srv, err := mockmcp.New(cfg)
	if err != nil {
		return err
	}

	var tlsConfig *tls.Config
	switch {
	case *o.tlsCert != "" && *o.tlsKey != "":
		pair, err := tls.LoadX509KeyPair(*o.tlsCert, *o.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	case *o.tlsCert != "" || *o.tlsKey != "":
		return errors.New("-tls-cert and -tls-key go together")
	default:
		host, _, err := net.SplitHostPort(*o.listen)
		if err != nil {
			return fmt.Errorf("-listen %q: %w", *o.listen, err)
		}
		if !isLoopback(host) {
			return fmt.Errorf("-listen %s is not a loopback address: -tls-cert and -tls-key are required (plain http is only for loopback)", *o.listen)
		}
		log.Warn("plain_http", "listen", *o.listen, "reason", "no -tls-cert: serving plain http on loopback, for trying things on one machine only")
	}

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: server-sent event streams stay open.
		ErrorLog: slog.NewLogLogger(handler, slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *o.listen)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "listen", ln.Addr().String(), "resource", cfg.ResourceURL, "tls", tlsConfig != nil,
		"no_auth", cfg.NoAuth, "prm", cfg.PRM.String(), "resource_metadata", srv.ResourceMetadataURL(),
		"control_api", cfg.ControlSecret != "")
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting_down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Open event streams never go idle; cut them.
		_ = hs.Close()
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
