package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type rec struct{ N int }

func TestRecordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := Records[rec]{B: NewMemory(), NS: "things"}
	if v, err := r.Get(ctx, "k"); v != nil || err != nil {
		t.Fatalf("Get of nothing = %v, %v", v, err)
	}
	if err := r.Put(ctx, "k", &rec{N: 7}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Take(ctx, "k"); err != nil || v == nil || v.N != 7 {
		t.Fatalf("Take = %v, %v", v, err)
	}
	if v, _ := r.Take(ctx, "k"); v != nil {
		t.Fatalf("second Take = %v, want nil", v)
	}
}

// TestHotCacheEvictsOneAtATime: past its bound the cache drops the least
// recently used entry, not everything.
func TestHotCacheEvictsOneAtATime(t *testing.T) {
	now := time.Unix(0, 0)
	c := NewHotCache(time.Minute, 3, func() time.Time { return now })
	for i := range 3 {
		c.put(hk(fmt.Sprint(i)), i)
	}
	c.get(hk("0")) // 1 is now the least recently used
	c.put(hk("3"), 3)
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if _, ok := c.get(hk("1")); ok {
		t.Error("the least recently used entry survived")
	}
	for _, k := range []string{"0", "2", "3"} {
		if _, ok := c.get(hk(k)); !ok {
			t.Errorf("entry %s was dropped", k)
		}
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(hk("0")); ok {
		t.Error("an entry outlived its TTL")
	}
}

func hk(k string) hotKey { return hotKey{"test", k} }

// TestCachedSeesOwnWrites: a write through the same Records is visible at
// once; a write behind its back only after the TTL.
func TestCachedSeesOwnWrites(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, 0)
	b := NewMemoryClock(func() time.Time { return now })
	r := Records[rec]{B: b, NS: "things", Hot: NewHotCache(2*time.Second, 10, func() time.Time { return now })}
	_ = r.Put(ctx, "k", &rec{N: 1}, time.Time{})
	if v, _ := r.Cached(ctx, "k"); v == nil || v.N != 1 {
		t.Fatalf("Cached = %v", v)
	}
	_ = r.Put(ctx, "k", &rec{N: 2}, time.Time{})
	if v, _ := r.Cached(ctx, "k"); v == nil || v.N != 2 {
		t.Fatalf("after own write Cached = %v, want 2", v)
	}
	_ = b.Put(ctx, "things", "k", []byte(`{"N":3}`), time.Time{})
	if v, _ := r.Cached(ctx, "k"); v.N != 2 {
		t.Fatalf("within the TTL Cached = %v, want the cached 2", v)
	}
	now = now.Add(2 * time.Second)
	if v, _ := r.Cached(ctx, "k"); v.N != 3 {
		t.Fatalf("after the TTL Cached = %v, want 3", v)
	}
}

// down is a backend whose reads fail with ErrUnavailable while it is down,
// as an unreachable Redis's do.
type down struct {
	Backend
	down bool
}

func (b *down) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if b.down {
		return nil, fmt.Errorf("down: %w", ErrUnavailable)
	}
	return b.Backend.Get(ctx, ns, key)
}

// TestCachedServesStaleWhileUnavailable: while the store cannot be reached,
// a record read within the Stale window is served from memory, and counted;
// an older one is not, nor one the store no longer had when last asked.
func TestCachedServesStaleWhileUnavailable(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	b := &down{Backend: NewMemoryClock(clock)}
	hot := NewHotCache(2*time.Second, 10, clock)
	hot.Stale = time.Minute
	var stale []Namespace
	hot.OnStale = func(ns Namespace) { stale = append(stale, ns) }
	r := Records[rec]{B: b, NS: "things", Hot: hot}
	_ = r.Put(ctx, "k", &rec{N: 1}, time.Time{})
	_ = r.Put(ctx, "gone", &rec{N: 2}, time.Time{})
	for _, k := range []string{"k", "gone"} {
		if v, err := r.Cached(ctx, k); err != nil || v == nil {
			t.Fatalf("Cached(%s) = %v, %v", k, v, err)
		}
	}
	// Another replica deletes "gone"; this one asks again after the TTL.
	_ = b.Backend.Delete(ctx, "things", "gone")
	now = now.Add(3 * time.Second)
	if v, err := r.Cached(ctx, "gone"); v != nil || err != nil {
		t.Fatalf("Cached(gone) after another replica deleted it = %v, %v; want nil", v, err)
	}

	b.down = true
	now = now.Add(30 * time.Second)
	if v, err := r.Cached(ctx, "k"); err != nil || v == nil || v.N != 1 {
		t.Fatalf("Cached(k) with the store down, read 33s ago = %v, %v; want the record from memory", v, err)
	}
	if len(stale) != 1 || stale[0] != "things" {
		t.Errorf("OnStale calls %v, want [things]", stale)
	}
	if v, err := r.Cached(ctx, "gone"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Cached(gone) with the store down = %v, %v; want ErrUnavailable, never a deleted record", v, err)
	}
	now = now.Add(time.Minute)
	if v, err := r.Cached(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Cached(k) with the store down, read past the Stale window = %v, %v; want ErrUnavailable", v, err)
	}
}
