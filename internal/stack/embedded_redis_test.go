package stack

import (
	"context"
	"fmt"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/storetest"
)

// The embedded Redis server stands in for redis-server in the replica
// scenarios, so the proxy's Redis store must meet its whole contract on it
// (leases, single-use takes, scans, expiry on the server's clock).
func TestRedisStoreMeetsTheBackendContractOnTheEmbeddedServer(t *testing.T) {
	srv, err := StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	n := 0
	open := func(t *testing.T, prefix string) store.Backend {
		s, err := redisstore.Open(context.Background(), srv.URL(), redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, storetest.Suite{
		RealTime: true,
		Open: func(t *testing.T, _ *storetest.Clock) store.Backend {
			n++
			return open(t, fmt.Sprint("embedded", n))
		},
		Replica: func(t *testing.T, b store.Backend) store.Backend {
			return open(t, b.(*redisstore.Store).Prefix())
		},
	})
}

// Without redis-server on PATH the stack embeds the server and says so;
// when the run requires the real one, it refuses instead.
func TestStartRedisEmbedsOnlyWhenAllowed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s := &Local{}
	s.dir = t.TempDir()
	if err := s.StartRedis(context.Background()); err != nil {
		t.Fatalf("StartRedis without redis-server: %v", err)
	}
	s.redisMu.Lock()
	url := s.redisURL
	s.redisMu.Unlock()
	b, err := redisstore.Open(context.Background(), url, redisstore.Options{Prefix: "probe"})
	if err != nil {
		t.Fatalf("the Redis store cannot open the embedded server at %s: %v", url, err)
	}
	b.Close()
	s.mu.Lock()
	s.stopExtras()
	s.mu.Unlock()
	var got Part
	for _, p := range Parts() {
		if p.Name == PartRedis {
			got = p
		}
	}
	if got.Kind != Embedded {
		t.Errorf("parts after an embedded start = %v; want %s %s", Parts(), PartRedis, Embedded)
	}

	if err := RequireReal(PartRedis); err != nil {
		t.Fatal(err)
	}
	defer func() { parts.Lock(); parts.required = nil; parts.Unlock() }()
	s2 := &Local{}
	s2.dir = t.TempDir()
	if err := s2.StartRedis(context.Background()); err == nil {
		s2.mu.Lock()
		s2.stopExtras()
		s2.mu.Unlock()
		t.Fatal("StartRedis embedded a server although the run requires the real redis-server")
	}
}
