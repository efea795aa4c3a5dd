package proxy

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/bearer"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// BenchmarkMemoryPerUser reports the heap one user costs a replica with
// the memory store: the user's access token and grant, and the upstream
// token, each stored and once read through the request path's hot cache
// (bounded at hotMax entries, least recently used first out). Run:
//
//	go test -run '^$' -bench MemoryPerUser -benchtime 1x ./proxy
func BenchmarkMemoryPerUser(b *testing.B) {
	for _, users := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(users), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				p, now := newTestProxy(b, "")
				rt := p.current().routes["mcp.test"]
				ctx := context.Background()
				before := heap()
				for i := range users {
					user := fmt.Sprintf("user-%d@example.com", i)
					key := rt.bindingKey(user, "", "https://upstream.test/mcp")
					tok := &upstream.Token{Key: key, AccessToken: fmt.Sprintf("upstream-access-token-%040d", i), RefreshToken: fmt.Sprintf("upstream-refresh-token-%040d", i),
						TokenType: "Bearer", Expiry: now.Add(time.Hour), Subject: user, Client: "https://client.example.net/app.json", Acquired: *now,
						Grant: upstream.Grant{Issuer: "https://auth.provider.com", AuthURL: "https://auth.provider.com/authorize", TokenURL: "https://auth.provider.com/token",
							ClientID: "https://mcp.test/.mcp-proxy/client-metadata.json", Resource: "https://upstream.test/mcp", Scopes: []string{"mcp:read"}, Method: upstream.MethodCIMD}}
					if err := rt.tokens.Put(ctx, tok); err != nil {
						b.Fatal(err)
					}
					down := fmt.Sprintf("mcpp_at_%043d", i)
					g := &request.Grant{ID: fmt.Sprint(i), Route: "mcp.test", Subject: user, ClientID: "https://client.example.net/app.json",
						Resource: "https://mcp.test/mcp", BindingKey: key, Upstream: "https://upstream.test/mcp", Created: *now}
					if err := p.putAccessToken(down, &bearer.AccessToken{Grant: g, Expires: now.Add(time.Hour)}); err != nil {
						b.Fatal(err)
					}
					if g, err := p.access.Check(ctx, "mcp.test", down); err != nil || g == nil {
						b.Fatal("the access token does not check", err)
					}
					if t, err := rt.tokens.Token(ctx, key); err != nil || t == nil {
						b.Fatal("the upstream token is not served", err)
					}
				}
				after := heap()
				b.ReportMetric(float64(after-before)/float64(users), "heap-bytes/user")
				b.StartTimer()
			}
		})
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
