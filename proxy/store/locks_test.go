package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLocalLocksDropLeasesThatRanOut: leases never unlocked (single-use
// markers) do not pile up, and a live one is kept.
func TestLocalLocksDropLeasesThatRanOut(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLocalLocks(func() time.Time { return now })
	ctx := context.Background()
	for i := range 3 * minPrune {
		if _, err := l.Lock(ctx, fmt.Sprint("used-", i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Lock(ctx, "live", time.Hour); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	for i := range minPrune {
		if _, err := l.Lock(ctx, fmt.Sprint("new-", i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.held); n > minPrune+1 {
		t.Errorf("%d leases held, want at most %d: those that ran out were kept", n, minPrune+1)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(short, "live", time.Hour); err == nil {
		t.Error("a live lease was dropped")
	}
}
