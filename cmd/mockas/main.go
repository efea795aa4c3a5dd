// Command mockas runs the mock OAuth 2.1 authorization server and OpenID
// Connect identity provider of package mockas. It only wires flags to the
// library; see the package documentation for the endpoints.
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

	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mockas:", err)
		os.Exit(2)
	}
}

// options are the parsed flags.
type options struct {
	issuer, listen, tlsCert, tlsKey, caFile *string
	allowLoopback, disableCIMD, enableDCR   *bool
	scopes, controlSecret                   *string
	accessTTL, refreshTTL, codeTTL          *time.Duration
	signingAlg, logLevel                    *string
	trustHosts, clients, users              listFlag
	workloadIssuers                         listFlag
	idjagIssuers, idjagAccess               listFlag
	idjagKey                                *string
}

// newFlagSet declares every flag with the text -h prints for it.
func newFlagSet(stderr io.Writer) (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet("mockas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{
		issuer:        fs.String("issuer", "", "issuer `URL`, such as https://auth.provider.com or https://idp.example.com/tenant1 (required); every endpoint lives under it"),
		listen:        fs.String("listen", ":8443", "`address` to listen on"),
		tlsCert:       fs.String("tls-cert", "", "TLS certificate chain `file` (PEM); with -tls-key. Without both, plain http is allowed only on a loopback -listen address"),
		tlsKey:        fs.String("tls-key", "", "TLS private key `file` (PEM); with -tls-cert"),
		caFile:        fs.String("ca-file", "", "extra root certificates (PEM `file`) trusted when fetching Client ID Metadata Documents, added to the system roots"),
		allowLoopback: fs.Bool("allow-loopback", false, "let Client ID Metadata Document hosts resolve to loopback addresses (development only)"),
		disableCIMD:   fs.Bool("disable-cimd", false, "turn off Client ID Metadata Documents: https URL client ids become unknown clients (the control API can turn them back on)"),
		enableDCR:     fs.Bool("enable-dcr", false, "turn on dynamic client registration (RFC 7591) at ISSUER/register and advertise registration_endpoint (the control API can switch it)"),
		scopes:        fs.String("scopes", "", "comma-separated `scopes` clients may request besides openid, email and profile; empty accepts any scope"),
		controlSecret: fs.String("control-secret", "", "shared `secret` guarding the test-control API under /.test/, sent as Authorization: Bearer SECRET (default $MOCKAS_CONTROL_SECRET; empty disables the API)"),
		accessTTL:     fs.Duration("access-token-ttl", mockas.DefaultAccessTokenTTL, "access token and ID token lifetime"),
		refreshTTL:    fs.Duration("refresh-token-ttl", mockas.DefaultRefreshTokenTTL, "refresh token lifetime (each rotation issues a token with a fresh lifetime)"),
		codeTTL:       fs.Duration("code-ttl", mockas.DefaultCodeTTL, "authorization code lifetime"),
		signingAlg:    fs.String("signing-alg", "RS256", "JWS `algorithm` of access and ID tokens: RS256 or ES256"),
		logLevel:      fs.String("log-level", "info", "log `level` of the JSON lines on standard error: debug, info, warn or error"),
	}
	fs.Var(&o.trustHosts, "trust-host", "host `name` allowed to resolve to private or loopback addresses when fetching Client ID Metadata Documents, such as the stack's client.example.net (repeatable)")
	fs.Var(&o.clients, "client", "pre-registered client as a `spec`: id=ID,secret=S,redirect=URI[,redirect=URI][,name=NAME]; omit secret for a public client, or give key=PUBLIC (the public key's PKIX DER in base64url) instead for a private_key_jwt client; a client with a secret or key may also use the client_credentials grant (repeatable)")
	fs.Var(&o.idjagIssuers, "id-jag-issuer", "enterprise identity provider whose ID-JAGs the JWT bearer grant accepts from an authenticated client (SEP-990), as `ISSUER=KEY`, KEY the public key's PKIX DER in base64url (repeatable)")
	o.idjagKey = fs.String("id-jag-key", "", "act as an enterprise identity provider: exchange the ID tokens this server issued for ID-JAGs (RFC 8693) signed with this `KEY`, an EC P-256 private key's PKCS #8 DER in base64url")
	fs.Var(&o.idjagAccess, "id-jag-access", "with -id-jag-key, an authorization server the enterprise connected, as `AUDIENCE=CLIENT_ID[,USER...]`: its issuer, the client the ID-JAG names there, the users who may reach it (none: all) (repeatable)")
	fs.Var(&o.workloadIssuers, "workload-issuer", "issuer of workload JWTs accepted with the JWT bearer grant (RFC 7523), as `ISSUER=KEY`, KEY the public key's PKIX DER in base64url (repeatable)")
	fs.Var(&o.users, "user", "user `name:password` that can sign in (repeatable); replaces the default users alice:alice-password and bob:bob-password")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: mockas -issuer URL [flags]

mockas is a mock OAuth 2.1 authorization server and OpenID Connect identity
provider for tests and local trials: PKCE S256 only, exact redirect URIs,
single-use codes, refresh token rotation, client credentials, Client ID
Metadata Documents, dynamic client registration (off by default), JWT
access tokens, login and consent pages.

With -control-secret, a test-control API under /.test/ (events, faults,
settings, rotate-key, revoke-user, counters) lets a test observe the server
and change it while it runs; see docs/test-doubles.md.

Example:
  mockas -issuer https://auth.provider.com -tls-cert cert.pem -tls-key key.pem \
    -client id=mcp-proxy,secret=s3cret,redirect=https://mcp.example.com/.auth/callback

Flags:
`)
		fs.PrintDefaults()
	}
	return fs, o
}

func run(args []string, stderr io.Writer) error {
	fs, o := newFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *o.issuer == "" {
		fs.Usage()
		return errors.New("-issuer is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config(o, logger)
	if err != nil {
		return err
	}

	var tlsConfig *tls.Config
	switch {
	case *o.tlsCert != "" && *o.tlsKey != "":
		pair, err := tls.LoadX509KeyPair(*o.tlsCert, *o.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	case *o.tlsCert != "" || *o.tlsKey != "":
		return errors.New("-tls-cert and -tls-key go together")
	case !loopbackAddr(*o.listen):
		return fmt.Errorf("no -tls-cert/-tls-key: plain http is allowed only on a loopback -listen address (such as 127.0.0.1:8443), not %q", *o.listen)
	}

	srv, err := mockas.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *o.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if tlsConfig == nil {
		logger.Warn("mockas_plain_http", "listen", ln.Addr().String(), "issuer", srv.Issuer(),
			"warning", "serving plain http for a local trial: no TLS certificate was given, and the session cookie is Secure, so only browsers that treat loopback as secure keep the login")
	}
	logger.Info("mockas_listening", "listen", ln.Addr().String(), "issuer", srv.Issuer(), "tls", tlsConfig != nil)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("mockas_shutting_down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// config turns the parsed flags into the server's configuration.
func config(o *options, logger *slog.Logger) (mockas.Config, error) {
	cfg := mockas.Config{
		Issuer:           *o.issuer,
		DisableCIMD:      *o.disableCIMD,
		EnableDCR:        *o.enableDCR,
		AccessTokenTTL:   *o.accessTTL,
		RefreshTokenTTL:  *o.refreshTTL,
		CodeTTL:          *o.codeTTL,
		SigningAlgorithm: *o.signingAlg,
		TrustedHosts:     o.trustHosts,
		AllowLoopback:    *o.allowLoopback,
		ControlSecret:    *o.controlSecret,
		Logger:           logger,
	}
	if cfg.ControlSecret == "" {
		cfg.ControlSecret = os.Getenv("MOCKAS_CONTROL_SECRET")
	}
	if *o.scopes != "" {
		for sc := range strings.SplitSeq(*o.scopes, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				cfg.ScopesSupported = append(cfg.ScopesSupported, sc)
			}
		}
	}
	for _, v := range o.clients {
		c, err := mockas.ParseClientFlag(v)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-client: %v", err)
		}
		cfg.Clients = append(cfg.Clients, c)
	}
	for _, v := range o.workloadIssuers {
		wi, err := mockas.ParseWorkloadIssuerFlag(v)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-workload-issuer: %v", err)
		}
		cfg.WorkloadIssuers = append(cfg.WorkloadIssuers, wi)
	}
	for _, v := range o.idjagIssuers {
		wi, err := mockas.ParseWorkloadIssuerFlag(v)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-id-jag-issuer: %v", err)
		}
		cfg.IDJAGIssuers = append(cfg.IDJAGIssuers, wi)
	}
	if *o.idjagKey != "" {
		k, err := mockas.ParseIDJAGKeyFlag(*o.idjagKey)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-id-jag-key: %v", err)
		}
		cfg.IDJAG = &mockas.IDJAGIssuing{Key: k}
		for _, v := range o.idjagAccess {
			a, err := mockas.ParseIDJAGAccessFlag(v)
			if err != nil {
				return mockas.Config{}, fmt.Errorf("-id-jag-access: %v", err)
			}
			cfg.IDJAG.Access = append(cfg.IDJAG.Access, a)
		}
	}
	for _, v := range o.users {
		u, err := mockas.ParseUserFlag(v)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-user: %v", err)
		}
		cfg.Users = append(cfg.Users, u)
	}
	if *o.caFile != "" {
		pem, err := os.ReadFile(*o.caFile)
		if err != nil {
			return mockas.Config{}, fmt.Errorf("-ca-file: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return mockas.Config{}, fmt.Errorf("-ca-file %s: no PEM certificates found", *o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loopbackAddr reports whether a listen address binds only loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
