package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore/redistest"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/storetest"
)

var ctx = context.Background()

func TestMain(m *testing.M) {
	// Tests stop Redis on purpose; its client's dial failures are noise.
	redisstore.SetClientLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

var prefixes atomic.Int64

func newKey() []byte {
	k := make([]byte, store.KeySize)
	rand.Read(k)
	return k
}

func open(t *testing.T, url string, o redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(ctx, url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The Redis store meets the contract every store backend meets (storetest),
// sealed and not, on a real redis-server, with a second Store on the same
// prefix as another replica.
func TestRedisStoreMeetsTheBackendContract(t *testing.T) {
	srv := redistest.Start(t)
	for _, sealed := range []bool{true, false} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			var key []byte
			if sealed {
				key = newKey()
			}
			storetest.Run(t, storetest.Suite{
				RealTime: true,
				Open: func(t *testing.T, _ *storetest.Clock) store.Backend {
					s, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: fmt.Sprint("t", prefixes.Add(1)), Key: key})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				// A second Store on the same Redis and prefix is another
				// proxy replica.
				Replica: func(t *testing.T, b store.Backend) store.Backend {
					s, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: b.(*redisstore.Store).Prefix(), Key: key})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
			})
		})
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableRedisRefusedAtOpen(t *testing.T) {
	addr := closedPort(t)
	start := time.Now()
	_, err := redisstore.Open(ctx, "redis://mcp:s3cret-password@"+addr+"/0", redisstore.Options{})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "Redis at "+addr+" does not answer") {
		t.Errorf("Open error = %q; want ErrUnavailable naming %s", err, addr)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open error %q shows the URL's password", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v to report a refused connection", d)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:6379", "redis://user:s3cret@[::1", "127.0.0.1:6379", "redis://u:s3cret@127.0.0.1:1/x/y"} {
		_, err := redisstore.Open(ctx, u, redisstore.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error %q shows the password", u, err)
		}
	}
}

// TestRedisStoppedMidway: once Redis goes away, every operation fails with
// ErrUnavailable (the proxy answers 503) instead of reporting "not found",
// which the proxy would take as "ask the user to consent again".
func TestRedisStoppedMidway(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.Options{Key: newKey()})
	if err := s.Put(ctx, "tokens", "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "tokens", "k")
	checks["Put"] = s.Put(ctx, "tokens", "k", []byte("v"), time.Time{})
	_, checks["Take"] = s.Take(ctx, "tokens", "k")
	checks["Delete"] = s.Delete(ctx, "tokens", "k")
	checks["Scan"] = s.Scan(ctx, "tokens", "", func(string, []byte) error { return nil })
	_, checks["Lock"] = s.Lock(ctx, "refresh", time.Second)
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s with Redis stopped: %v; want ErrUnavailable", op, err)
		}
	}
}

func raw(t *testing.T, url string) *redis.Client {
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// keys lists every key in Redis.
func keys(t *testing.T, rc *redis.Client) []string {
	t.Helper()
	ks, err := rc.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ks)
	return ks
}

func TestValuesSealedInRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redisstore.Options{Prefix: "p", Key: newKey()})
	secret := "upstream-access-token-0123456789"
	s.Put(ctx, "tokens", "alice", []byte(secret), time.Time{})
	rc := raw(t, srv.URL())
	names := keys(t, rc)
	s.Put(ctx, "tokens", "bob", []byte("bob-token"), time.Now().Add(time.Hour))
	var alice, bob string
	for _, k := range keys(t, rc) {
		switch {
		case strings.HasPrefix(k, "p:tokens#") && slices.Contains(names, k):
			alice = k
		case strings.HasPrefix(k, "p:tokens#"):
			bob = k
		}
	}
	if alice == "" || bob == "" {
		t.Fatalf("keys in Redis: %q; want two records under p:tokens#", keys(t, rc))
	}
	v, err := rc.Get(ctx, alice).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v), secret) || strings.Contains(string(v), "alice") {
		t.Fatal("Redis holds the value or its key in the clear")
	}
	if ttl := rc.PTTL(ctx, bob).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL of a value expiring in an hour = %v", ttl)
	}
	// Moving alice's sealed token to bob's key must not give bob a token.
	rc.Set(ctx, bob, v, 0)
	if got, err := s.Get(ctx, "tokens", "bob"); !errors.Is(err, store.ErrUnsealable) {
		t.Errorf("Get of a moved value = %q, %v; want ErrUnsealable", got, err)
	}
}

// Key names do not show the store keys, which name users, MCP clients and
// remote servers (issue 26): only the prefix and the namespace are in the
// clear. Two stores with the same key file agree on the names; another key
// file gives other names.
func TestKeyNamesHashed(t *testing.T) {
	srv := redistest.Start(t)
	rc := raw(t, srv.URL())
	key := newKey()
	storeKey := "per_user\x00mcp.example.com\x00alice@example.com\x00https://remote-mcp.provider.com/mcp"
	for _, c := range []struct {
		prefix string
		key    []byte
	}{{"sealed", key}, {"plain", nil}} {
		s := open(t, srv.URL(), redisstore.Options{Prefix: c.prefix, Key: c.key})
		if err := s.Put(ctx, "upstream", storeKey, []byte("v"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		unlock, err := s.Lock(ctx, "refresh:"+storeKey, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys(t, rc) {
			for _, clear := range []string{"alice", "example.com", "remote-mcp", "refresh"} {
				if strings.Contains(k, clear) {
					t.Errorf("prefix %s: Redis key %q shows %q", c.prefix, k, clear)
				}
			}
		}
		unlock()
	}
	var sealedNames []string
	for _, k := range keys(t, rc) {
		if strings.HasPrefix(k, "sealed:upstream#") {
			sealedNames = append(sealedNames, k)
		}
	}
	other := open(t, srv.URL(), redisstore.Options{Prefix: "other", Key: newKey()})
	other.Put(ctx, "upstream", storeKey, []byte("v"), time.Time{})
	for _, k := range keys(t, rc) {
		if h, ok := strings.CutPrefix(k, "other:upstream#"); ok && slices.ContainsFunc(sealedNames, func(n string) bool { return strings.HasSuffix(n, h) }) {
			t.Errorf("two key files gave the same name %q", h)
		}
	}
	replica := open(t, srv.URL(), redisstore.Options{Prefix: "sealed", Key: key})
	if v, err := replica.Get(ctx, "upstream", storeKey); err != nil || string(v) != "v" {
		t.Errorf("a replica with the same key file reads %q, %v; want v", v, err)
	}
}

func TestSealingMarker(t *testing.T) {
	srv := redistest.Start(t)
	key := newKey()
	open(t, srv.URL(), redisstore.Options{Prefix: "sealed", Key: key})
	open(t, srv.URL(), redisstore.Options{Prefix: "sealed", Key: key}) // same key: a replica
	open(t, srv.URL(), redisstore.Options{Prefix: "plain"})
	open(t, srv.URL(), redisstore.Options{Prefix: "plain"})
	for _, c := range []struct {
		prefix string
		key    []byte
		want   string
	}{
		{"sealed", newKey(), "was written with another key file"},
		{"sealed", nil, "holds sealed values"},
		{"plain", key, "holds unsealed values"},
	} {
		s, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: c.prefix, Key: c.key})
		if err == nil {
			s.Close()
			t.Errorf("Open(prefix %s, key set %v) succeeded, want %q", c.prefix, c.key != nil, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(prefix %s) error %q, want %q", c.prefix, err, c.want)
		}
	}
}

func TestLeaseLivesInRedis(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL(), redisstore.Options{Prefix: "p"})
	unlock, err := a.Lock(ctx, "refresh:k", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rc := raw(t, srv.URL())
	var leases []string
	for _, k := range keys(t, rc) {
		if strings.HasPrefix(k, "p:!lock:") {
			leases = append(leases, k)
		}
	}
	if len(leases) != 1 {
		t.Fatalf("lease keys %q, want one under p:!lock:", leases)
	}
	if ttl := rc.PTTL(ctx, leases[0]).Val(); ttl <= 0 || ttl > 5*time.Second {
		t.Errorf("lease PTTL = %v, want within (0, 5s]", ttl)
	}
	unlock()
	if n := rc.Exists(ctx, leases[0]).Val(); n != 0 {
		t.Errorf("after unlock the lease key still exists")
	}
}
