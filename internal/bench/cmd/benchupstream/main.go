// Command benchupstream is the remote MCP server of `make bench`, over
// HTTPS: -mode sdk is the MCP Go SDK's Streamable HTTP server with an echo
// tool (each tools/call answered as a server-sent event stream); -mode
// canned answers every tools/call with the same JSON bytes (bench.
// CannedAnswer), so that what is measured is the hop alone. Neither checks
// the bearer token: the proxy's warm path is what is measured, and every
// target sends one. -mode mockmcp is the conformance harness's mock MCP
// server (package mockmcp), which verifies every token against the -as
// issuer's keys: `make load` runs it, so that an expired or lost remote
// token shows.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "`address` to listen on")
	certFile := flag.String("tls-cert", "", "TLS certificate `file` (PEM)")
	keyFile := flag.String("tls-key", "", "TLS key `file` (PEM)")
	mode := flag.String("mode", "sdk", "sdk (the MCP Go SDK echo server), canned (a fixed JSON answer), streams (idle event streams, see streamServer) or mockmcp (the mock MCP server, checking tokens)")
	resource := flag.String("resource", "", "-mode mockmcp: the resource `URL`")
	issuer := flag.String("as", "", "-mode mockmcp: the `issuer` whose tokens are accepted")
	asAddr := flag.String("as-addr", "", "-mode mockmcp: the issuer's `host:port` on this machine")
	caFile := flag.String("ca-file", "", "-mode mockmcp: PEM `file` of the CA of the issuer's certificate")
	flag.Parse()
	var h http.Handler
	switch *mode {
	case "sdk":
		h = sdkServer()
	case "canned":
		h = http.HandlerFunc(canned)
	case "streams":
		h = newStreamServer()
	case "mockmcp":
		var err error
		if h, err = mockServer(*resource, *issuer, *asAddr, *caFile); err != nil {
			fmt.Fprintln(os.Stderr, "benchupstream:", err)
			os.Exit(2)
		}
	default:
		fmt.Fprintf(os.Stderr, "benchupstream: -mode %q: use sdk, canned, streams or mockmcp\n", *mode)
		os.Exit(2)
	}
	srv := &http.Server{
		Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	if err := srv.ListenAndServeTLS(*certFile, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "benchupstream:", err)
		os.Exit(1)
	}
}

// mockServer is mockmcp for resource, trusting issuer, which it reaches at
// asAddr whatever its name resolves to.
func mockServer(resource, issuer, asAddr, caFile string) (http.Handler, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, asAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	return mockmcp.New(mockmcp.Config{ResourceURL: resource, AuthorizationServers: []string{issuer}, HTTPClient: hc,
		Logger: slog.New(slog.DiscardHandler)})
}

type echoArgs struct {
	Text string `json:"text"`
}

func sdkServer() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Answers with its text."},
		func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		// Requests arrive over loopback with the bench's host names.
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true})
}

// canned answers initialize (for the MCP client that authorizes the
// proxy's route once), accepts notifications, and answers everything else
// with bench.CannedAnswer.
func canned(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	switch {
	case bytes.Contains(body, []byte(`"name":"`+bench.LargeTool+`"`)):
		large(w, bench.LargeToolBytes, false)
	case bytes.Contains(body, []byte(`"uri":"`+bench.LargeResource+`"`)):
		large(w, bench.LargeResourceBytes, true)
	case bytes.Contains(body, []byte(`"tools/call"`)):
		hdr["Content-Length"] = []string{strconv.Itoa(len(bench.CannedAnswer))}
		w.Write(bench.CannedAnswer)
	case bytes.Contains(body, []byte(`"initialize"`)):
		var m struct {
			ID     json.RawMessage `json:"id"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &m) != nil {
			http.Error(w, "bad initialize", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{"tools":{}},"serverInfo":{"name":"bench-canned","version":"1"}}}`,
			m.ID, m.Params.ProtocolVersion)
	case !bytes.Contains(body, []byte(`"id"`)):
		w.WriteHeader(http.StatusAccepted) // a notification
	default:
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}
}
