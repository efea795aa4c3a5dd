// Command benchupstream is the remote MCP server of `make bench`, over
// HTTPS: -mode sdk is the MCP Go SDK's Streamable HTTP server with an echo
// tool (each tools/call answered as a server-sent event stream); -mode
// canned answers every tools/call with the same JSON bytes (bench.
// CannedAnswer), so that what is measured is the hop alone. Neither checks
// the bearer token: the proxy's warm path is what is measured, and every
// target sends one.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "`address` to listen on")
	certFile := flag.String("tls-cert", "", "TLS certificate `file` (PEM)")
	keyFile := flag.String("tls-key", "", "TLS key `file` (PEM)")
	mode := flag.String("mode", "sdk", "sdk (the MCP Go SDK echo server) or canned (a fixed JSON answer)")
	flag.Parse()
	var h http.Handler
	switch *mode {
	case "sdk":
		h = sdkServer()
	case "canned":
		h = http.HandlerFunc(canned)
	default:
		fmt.Fprintf(os.Stderr, "benchupstream: -mode %q: use sdk or canned\n", *mode)
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
