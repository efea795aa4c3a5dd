package store

import (
	"context"
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
