// Command mockcimd serves the Client ID Metadata Documents of the
// conformance stack's MCP clients (package internal/clientmeta) over HTTPS:
// the host client.example.net of the container stack. The in-process stack
// serves the same handler itself.
//
//	mockcimd -host client.example.net -tls-cert cert.pem -tls-key key.pem
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mockcimd:", err)
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockcimd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "client.example.net", "the `host name` the documents are published at: it is in every client_id and redirect URI")
	listen := fs.String("listen", ":8443", "`address` to listen on")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with -tls-key. Without both, plain http is allowed only on a loopback -listen address")
	tlsKey := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: mockcimd [flags]

mockcimd publishes a Client ID Metadata Document for every MCP client name:
GET /NAME/client-metadata.json answers a public client whose client_id is that
URL and whose redirect URI is https://HOST/NAME/callback. A NAME ending in
-pkjwt is a private_key_jwt client whose keys are at /NAME/jwks.json, derived
from the environment variable MOCKCIMD_KEY_SEED; a NAME starting with refuse-
is a document the proxy must refuse (package internal/clientmeta).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	useTLS := *tlsCert != "" || *tlsKey != ""
	if useTLS && (*tlsCert == "" || *tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if !useTLS && !loopback(*listen) {
		return fmt.Errorf("no -tls-cert/-tls-key: plain http is allowed only on a loopback -listen address, not %q", *listen)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: clientmeta.Handler(*host, os.Getenv(clientmeta.KeySeedEnv)), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
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
	log.Info("mockcimd_listening", "listen", ln.Addr().String(), "host", *host, "tls", useTLS)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
