package registration

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRegistry(max int) (*Registry, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &Registry{B: store.NewMemoryClock(c.now), Now: c.now, Max: max, UsedTTL: 30 * 24 * time.Hour}, c
}

var req = &Request{Name: "n", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, ApplicationType: Native}

func TestUnusedRegistrationExpires(t *testing.T) {
	ctx := context.Background()
	g, c := newRegistry(0)
	cl, err := g.Register(ctx, "mcp.test", req)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(UnusedTTL - time.Second)
	if got, _ := g.Get(ctx, "mcp.test", cl.ID); got == nil {
		t.Fatal("gone before its lifetime")
	}
	c.t = c.t.Add(2 * time.Second)
	if got, _ := g.Get(ctx, "mcp.test", cl.ID); got != nil {
		t.Fatal("an unused registration outlived UnusedTTL")
	}
}

func TestUsedRegistrationLivesWithItsGrants(t *testing.T) {
	ctx := context.Background()
	g, c := newRegistry(0)
	cl, _ := g.Register(ctx, "mcp.test", req)
	c.t = c.t.Add(time.Hour)
	if err := g.Used(ctx, "mcp.test", cl.ID); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(UnusedTTL * 2)
	if got, _ := g.Get(ctx, "mcp.test", cl.ID); got == nil {
		t.Fatal("a used registration expired like an unused one")
	}
	c.t = c.t.Add(g.UsedTTL)
	if got, _ := g.Get(ctx, "mcp.test", cl.ID); got != nil {
		t.Fatal("a used registration outlived UsedTTL after its last use")
	}
}

func TestRegistrationIsPerHostAndOpaque(t *testing.T) {
	ctx := context.Background()
	g, _ := newRegistry(0)
	cl, _ := g.Register(ctx, "mcp.test", req)
	if !IsRegisteredID(cl.ID) || len(cl.ID) < len(IDPrefix)+20 {
		t.Fatalf("client id %q", cl.ID)
	}
	if got, _ := g.Get(ctx, "other.test", cl.ID); got != nil {
		t.Fatal("a registration is valid on another host")
	}
	if got, _ := g.Get(ctx, "mcp.test", "https://mcp.test/x"); got != nil {
		t.Fatal("a URL was looked up as a registered id")
	}
}

func TestCountIsBounded(t *testing.T) {
	ctx := context.Background()
	g, c := newRegistry(3)
	for range 3 {
		if _, err := g.Register(ctx, "mcp.test", req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Register(ctx, "mcp.test", req); !errors.Is(err, ErrFull) {
		t.Fatalf("the 4th of 3 registrations: err = %v, want ErrFull", err)
	}
	c.t = c.t.Add(UnusedTTL + time.Second)
	if _, err := g.Register(ctx, "mcp.test", req); err != nil {
		t.Fatalf("after the unused ones expired: %v", err)
	}
}

func TestRateLimitPerAddressAndGlobal(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := &Limiter{Now: c.now}
	from := func(ip string) bool {
		r := httptest.NewRequest("POST", "https://mcp.test/.mcp-proxy/register", nil)
		r.RemoteAddr = ip + ":1234"
		ok, _ := l.Allow(r)
		return ok
	}
	for i := range PerIPBurst {
		if !from("192.0.2.1") {
			t.Fatalf("registration %d refused within the burst", i+1)
		}
	}
	r := httptest.NewRequest("POST", "https://mcp.test/.mcp-proxy/register", nil)
	r.RemoteAddr = "192.0.2.1:1"
	if ok, wait := l.Allow(r); ok || wait <= 0 || wait > PerIPEvery {
		t.Fatalf("past the burst: ok = %v, wait = %v", ok, wait)
	}
	if !from("192.0.2.2") {
		t.Fatal("another address is limited by the first one's bucket")
	}
	c.t = c.t.Add(PerIPEvery)
	if !from("192.0.2.1") {
		t.Fatal("the bucket did not refill")
	}
	// The global bucket: many addresses, one registration each.
	n := 0
	for i := range GlobalBurst + 10 {
		if from("198.51.100." + string(rune('a'+i%26)) + string(rune('a'+i/26))) {
			n++
		}
	}
	if n >= GlobalBurst {
		t.Fatalf("%d registrations from many addresses passed the global burst of %d", n, GlobalBurst)
	}
}
