// Command mockmcp runs the mock MCP server of the conformance harness: an
// OAuth-protected MCP server (package mockmcp) on HTTPS.
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

	"github.com/mcp-proxy/mcp-proxy/internal/netguard"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
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

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockmcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		resource        = fs.String("resource", "", "the server's resource URL, such as https://remote-mcp.provider.com/mcp (required); MCP is served at its path and tokens must name it in aud")
		noAuth          = fs.Bool("no-auth", false, "run as an internal upstream that needs no OAuth: no token check, no protected resource metadata")
		prm             = fs.String("prm", "path", "where protected resource metadata is served: path (/.well-known/oauth-protected-resource/<path>), root (/.well-known/oauth-protected-resource, resource = origin) or absent")
		scopes          = fs.String("scopes", "", "comma-separated scopes advertised as scopes_supported and, unless -challenge-scopes is given, sent in the 401 challenge")
		challengeScopes = fs.String("challenge-scopes", "", "comma-separated scopes for the 401 challenge's scope parameter; given empty, the challenge has no scope")
		resourceName    = fs.String("resource-name", "", "resource_name in the metadata (default \"Mock MCP server\")")
		allowAnyHost    = fs.Bool("allow-any-host", false, "accept any Host header; by default a Host that does not name the resource URL's host gets 421")
		listen          = fs.String("listen", ":8443", "address to listen on")
		tlsCert         = fs.String("tls-cert", "", "TLS certificate file (PEM); required unless -listen is a loopback address, where plain http is allowed")
		tlsKey          = fs.String("tls-key", "", "TLS private key file (PEM), with -tls-cert")
		caFile          = fs.String("ca-file", "", "PEM file of CA certificates trusted, besides the system roots, when fetching the authorization servers' metadata and keys")
		controlSecret   = fs.String("control-secret", "", "shared secret guarding the test-control API under /.test/ (default $MOCKMCP_CONTROL_SECRET; empty turns the API off)")
		jsonLogs        = fs.Bool("log-json", true, "log JSON lines to stderr (false: text)")
	)
	var issuers, toolScopes listFlag
	fs.Var(&issuers, "as", "issuer URL of an authorization server whose tokens are accepted (repeatable; required unless -no-auth)")
	fs.Var(&toolScopes, "tool-scope", "TOOL=SCOPE[,SCOPE...]: scopes a token needs to call TOOL, else 403 insufficient_scope (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mockmcp -resource URL -as ISSUER [flags]\n\nThe conformance harness's mock MCP server: an OAuth-protected resource server on Streamable HTTP.\nEndpoints: the resource path (MCP), /.well-known/oauth-protected-resource[/path], /healthz, /.test/events, /.test/faults.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var handler slog.Handler = slog.NewJSONHandler(stderr, nil)
	if !*jsonLogs {
		handler = slog.NewTextHandler(stderr, nil)
	}
	log := slog.New(handler)

	loc, err := mockmcp.ParsePRMLocation(*prm)
	if err != nil {
		return err
	}
	cfg := mockmcp.Config{
		ResourceURL:          *resource,
		AuthorizationServers: issuers,
		NoAuth:               *noAuth,
		PRM:                  loc,
		ScopesSupported:      splitList(*scopes),
		ResourceName:         *resourceName,
		AllowAnyHost:         *allowAnyHost,
		ControlSecret:        *controlSecret,
		Logger:               log,
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "challenge-scopes" {
			cfg.ChallengeScopes = append([]string{}, splitList(*challengeScopes)...)
		}
	})
	if cfg.ControlSecret == "" {
		cfg.ControlSecret = os.Getenv("MOCKMCP_CONTROL_SECRET")
	}
	for _, ts := range toolScopes {
		tool, list, ok := strings.Cut(ts, "=")
		if !ok || tool == "" || list == "" {
			return fmt.Errorf("-tool-scope %q: want TOOL=SCOPE[,SCOPE...]", ts)
		}
		if cfg.ToolScopes == nil {
			cfg.ToolScopes = map[string][]string{}
		}
		cfg.ToolScopes[tool] = append(cfg.ToolScopes[tool], splitList(list)...)
	}

	var roots *x509.CertPool
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("-ca-file: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-ca-file %s: no PEM certificates", *caFile)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	cfg.HTTPClient = &http.Client{
		Transport: netguard.NewTransport(dialer.DialContext, netguard.TransportOptions{RootCAs: roots}),
		Timeout:   15 * time.Second,
	}

	srv, err := mockmcp.New(cfg)
	if err != nil {
		return err
	}

	useTLS := *tlsCert != "" || *tlsKey != ""
	if useTLS && (*tlsCert == "" || *tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if !useTLS {
		host, _, err := net.SplitHostPort(*listen)
		if err != nil {
			return fmt.Errorf("-listen %q: %w", *listen, err)
		}
		if !isLoopback(host) {
			return fmt.Errorf("-listen %s is not a loopback address: -tls-cert and -tls-key are required (plain http is only for loopback)", *listen)
		}
		log.Warn("plain_http", "listen", *listen, "reason", "no -tls-cert: serving plain http on loopback, for trying things on one machine only")
	}

	hs := &http.Server{
		Addr:              *listen,
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: server-sent event streams stay open.
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:  slog.NewLogLogger(handler, slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- hs.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	log.Info("listening", "listen", ln.Addr().String(), "resource", cfg.ResourceURL, "tls", useTLS,
		"no_auth", cfg.NoAuth, "prm", loc.String(), "resource_metadata", srv.ResourceMetadataURL(),
		"control_api", cfg.ControlSecret != "")
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
