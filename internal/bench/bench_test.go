// Package bench measures the proxy's warm path against calling the remote
// MCP server directly, in one run: `make bench`.
//
// Both sides are the official MCP Go SDK client calling the echo tool of
// mockmcp over HTTPS on the in-process stack. "direct" holds a token from
// the authorization server (client credentials, resource = the server);
// "proxied" is alice's MCP client through mcp-proxy with the Quick Start
// configuration, after its one-time authorization. Every component runs in
// this process, so cpu-us/op is the CPU of the whole exchange; the proxy's
// own cost is the difference between the two.
package bench

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// bareHost serves the baseline hop.
const bareHost = "bare-hop.example.com"

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(b *testing.B, sess *mcp.ClientSession) {
	ctx := context.Background()
	args := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	// Warm up connections and caches outside the measurement.
	for range 20 {
		if _, err := sess.CallTool(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		res, err := sess.CallTool(ctx, args)
		if err != nil || res.IsError {
			b.Fatalf("echo: %v %v", err, res)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-us/op")
}

func BenchmarkEcho(b *testing.B) {
	docs, err := docexamples.Load(filepath.Join("..", "..", "docs"))
	if err != nil {
		b.Fatal(err)
	}
	ex, err := docs.Get("quickstart-minimal")
	if err != nil {
		b.Fatal(err)
	}
	st, err := stack.NewLocal()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.WriteConfig(ex.Body); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := st.StartProxy(ctx); err != nil {
		b.Fatal(err)
	}

	cc := &clientcredentials.Config{
		ClientID: stack.UpstreamConfidentialClient, ClientSecret: stack.UpstreamClientSecret,
		TokenURL:       "https://" + stack.ASHost + "/token",
		EndpointParams: map[string][]string{"resource": {stack.UpstreamResource}},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	ts := cc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: st.Transport()}))
	tok, err := ts.Token()
	if err != nil {
		b.Fatal(err)
	}
	connect := func(b *testing.B, endpoint string, rt http.RoundTripper) *mcp.ClientSession {
		client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: rt}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sess.Close() })
		return sess
	}

	// A bare reverse proxy hop that only adds the bearer header: the
	// baseline of DESIGN §5.9 that mcp-proxy's warm path is compared with.
	target, _ := url.Parse("https://" + stack.UpstreamHost)
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = ""
			pr.Out.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		},
		Transport: st.Transport(),
	}
	if err := st.Serve(bareHost, bare); err != nil {
		b.Fatal(err)
	}

	b.Run("direct", func(b *testing.B) {
		run(b, connect(b, stack.UpstreamResource, &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: st.Transport()}))
	})
	b.Run("bare-hop", func(b *testing.B) {
		run(b, connect(b, "https://"+bareHost+"/mcp", st.Transport()))
	})
	b.Run("proxied", func(b *testing.B) {
		name := "bench-client"
		c, err := actors.NewMCPClient(st.Transport(), "alice", name, st.ClientMetadataURL(name), st.ClientRedirectURL(name))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx, "https://"+stack.ProxyHost+"/mcp"); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c.Session())
	})
}
