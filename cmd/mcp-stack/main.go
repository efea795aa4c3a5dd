// Command mcp-stack runs the whole conformance stack on this machine for a
// person to try: mcp-proxy with the Quick Start configuration, the mock
// authorization server and identity provider, the mock MCP server, and the
// host of MCP clients' metadata documents, under the names the docs use.
//
// It first walks one user through the documented flow headlessly and
// prints what happened, then keeps serving on one HTTPS address that
// routes by host name, and prints how to reach it with curl and Chromium
// on any port while the URLs stay the docs' own (https, port 443): each
// tool maps the names and port 443 to the address, not the URLs.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:443", "serve every stack name on this `address` (port 443 keeps the docs' URLs unchanged;\nbinding it needs root or CAP_NET_BIND_SERVICE)")
	example := flag.String("example", "quickstart-minimal", "the documented configuration `id` the proxy runs")
	docs := flag.String("docs", "docs", "the documentation `directory` the example is read from")
	dir := flag.String("dir", filepath.Join("build", "demo"), "where the CA certificate and the proxy's log (mcp-proxy.log) are written")
	walk := flag.Bool("walkthrough", true, "first connect alice's MCP client headlessly and call whoami")
	once := flag.Bool("once", false, "stop after the walkthrough instead of serving")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: mcp-stack [flags]\n\nRuns mcp-proxy between a mock MCP server, a mock authorization server and a mock\nidentity provider on this machine, as in docs/quickstart.md.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*listen, *example, *docs, *dir, *walk, *once); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-stack:", err)
		os.Exit(1)
	}
}

func run(listen, exampleID, docsDir, dir string, walk, once bool) error {
	set, err := docexamples.Load(docsDir)
	if err != nil {
		return err
	}
	ex, err := set.Get(exampleID)
	if err != nil {
		return err
	}
	st, err := stack.NewLocal()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.WriteConfig(ex.Body); err != nil {
		return err
	}
	// The guide prints these paths in commands to paste anywhere.
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "mcp-proxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := st.CopyProxyLog(logFile); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := st.StartProxy(ctx); err != nil {
		return err
	}
	fmt.Printf("mcp-proxy is serving the documented configuration %q (docs/%s.md).\n", exampleID, ex.Page)
	fmt.Printf("Its log (JSON lines) goes to %s: the request id an error page shows is on the matching line.\n", logPath)

	if walk {
		if err := walkthrough(ctx, st); err != nil {
			return fmt.Errorf("walkthrough: %w", err)
		}
	}
	if once {
		return nil
	}

	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, st.CAPEM(), 0o644); err != nil {
		return err
	}
	cert, err := st.Certificate(stack.Names...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another address with -listen, or run with the right to bind port 443)", listen, err)
	}
	front := &http.Server{
		Handler:           frontHandler(st),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go front.ServeTLS(ln, "", "")
	g, err := newGuide(ln.Addr().String(), caPath, logPath, cert)
	if err != nil {
		return err
	}
	fmt.Print(g.text())
	fmt.Println("\nPress Ctrl-C to stop.")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return front.Shutdown(sctx)
}

// frontHandler sends each request to the component that serves its host.
func frontHandler(st *stack.Local) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			host := pr.In.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = host
			pr.Out.Host = host
			pr.SetXForwarded()
		},
		Transport:     st.Transport(),
		FlushInterval: -1,
	}
}

func walkthrough(ctx context.Context, st *stack.Local) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	name := "demo-client"
	c, err := actors.NewMCPClient(st.Transport(), "alice", name, st.ClientMetadataURL(name), st.ClientRedirectURL(name))
	if err != nil {
		return err
	}
	defer c.Close()
	endpoint := "https://" + stack.ProxyHost + "/mcp"
	fmt.Printf("\nWalkthrough: alice's MCP client connects to %s\n", endpoint)
	if err := c.Connect(ctx, endpoint); err != nil {
		return err
	}
	fmt.Printf("alice's browser went through:%s\n", c.History())
	res, err := c.Call(ctx, "whoami", map[string]any{})
	if err != nil {
		return err
	}
	if res.IsError {
		return errors.New(actors.ToolText(res))
	}
	fmt.Printf("\ntools/call whoami through the proxy answered:\n%s\n", actors.ToolText(res))
	return nil
}
