// Package storetest is the conformance suite every store.Backend passes:
// the memory, file and Redis backends run the same tests, so the proxy can
// rely on one contract whichever storage the operator picks.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// Clock is the time a backend under test reads. In fake mode it stands
// still until Advance moves it; in real mode (a backend that keeps its own
// time, like Redis) Now is the wall clock and Advance sleeps.
type Clock struct {
	real bool
	mu   sync.Mutex
	t    time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	if c.real {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Suite describes a backend to the conformance suite.
type Suite struct {
	// Open returns a new, empty backend. A backend with an injectable clock
	// reads the time from clock.Now. Open registers the cleanup of anything
	// else it starts; the suite closes the backend.
	Open func(t *testing.T, clock *Clock) store.Backend
	// RealTime is set for a backend that keeps its own time (Redis expires
	// keys on its own clock): the suite's clock then follows the wall clock
	// and expiry tests wait a few hundred milliseconds instead of moving a
	// fake clock.
	RealTime bool
	// Replica, when set, returns a second backend sharing b's storage, as
	// another proxy replica would; the Take and Lock tests then contend
	// across both. The suite closes it.
	Replica func(t *testing.T, b store.Backend) store.Backend
}

// Run runs the conformance suite. Each case opens its own backend.
func Run(t *testing.T, s Suite) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"NamespacesAreSeparate", testNamespaces},
		{"ValuesAreCopied", testValuesCopied},
		{"BadNamespace", testBadNamespace},
		{"Expiry", testExpiry},
		{"Take", testTake},
		{"TakeIsSingleUse", testTakeConcurrent},
		{"Scan", testScan},
		{"ScanPrefixIsLiteral", testScanLiteral},
		{"ScanStopsAtError", testScanError},
		{"ScanMayModify", testScanModify},
		{"LockIsExclusive", testLockExclusive},
		{"LockWaitsUntilUnlock", testLockWaits},
		{"LockHonoursContext", testLockContext},
		{"LockNamesAreSeparate", testLockNames},
		{"ExpiredLeaseUnlockKeepsNewHolder", testLockExpired},
		{"LockRejectsBadTTL", testLockBadTTL},
		{"Closed", testClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &Clock{real: s.RealTime, t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			b := s.Open(t, clock)
			h := &harness{Backend: b, clock: clock, real: s.RealTime}
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			h.replica = b
			if s.Replica != nil {
				r := s.Replica(t, b)
				h.replica = r
				t.Cleanup(func() { r.Close() })
			}
			c.fn(t, h)
		})
	}
}

type harness struct {
	store.Backend
	replica store.Backend // == Backend when the backend has no replicas
	clock   *Clock
	real    bool
}

// ttl is a lifetime short enough to wait out on a real clock yet long
// enough that a loaded machine reads the value before it expires.
func (h *harness) ttl() time.Duration {
	if h.real {
		return 300 * time.Millisecond
	}
	return time.Hour
}

var ctx = context.Background()

func mustPut(t *testing.T, b store.Backend, ns, key, val string, exp time.Time) {
	t.Helper()
	if err := b.Put(ctx, ns, key, []byte(val), exp); err != nil {
		t.Fatalf("Put(%s, %q): %v", ns, key, err)
	}
}

func wantValue(t *testing.T, b store.Backend, ns, key, want string) {
	t.Helper()
	got, err := b.Get(ctx, ns, key)
	if err != nil {
		t.Fatalf("Get(%s, %q): %v, want %q", ns, key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%s, %q) = %q, want %q", ns, key, got, want)
	}
}

func wantNotFound(t *testing.T, b store.Backend, ns, key string) {
	t.Helper()
	got, err := b.Get(ctx, ns, key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%s, %q) = %q, %v; want ErrNotFound", ns, key, got, err)
	}
}

func testGetPutDelete(t *testing.T, h *harness) {
	wantNotFound(t, h, "tokens", "k")
	mustPut(t, h, "tokens", "k", "v1", time.Time{})
	wantValue(t, h, "tokens", "k", "v1")
	mustPut(t, h, "tokens", "k", "v2", time.Time{})
	wantValue(t, h, "tokens", "k", "v2")
	wantValue(t, h.replica, "tokens", "k", "v2")
	mustPut(t, h, "tokens", "empty", "", time.Time{})
	wantValue(t, h, "tokens", "empty", "")
	bin := string([]byte{0, 1, 2, 0xff, '\n', 0})
	mustPut(t, h, "tokens", "bin\x00:*?[]", bin, time.Time{})
	wantValue(t, h, "tokens", "bin\x00:*?[]", bin)
	if err := h.Delete(ctx, "tokens", "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, h, "tokens", "k")
	if err := h.Delete(ctx, "tokens", "k"); err != nil {
		t.Fatalf("Delete of an absent key: %v, want nil", err)
	}
	if err := h.Delete(ctx, "never-used", "k"); err != nil {
		t.Fatalf("Delete in an unused namespace: %v, want nil", err)
	}
}

func testNamespaces(t *testing.T, h *harness) {
	mustPut(t, h, "a", "k", "in a", time.Time{})
	mustPut(t, h, "b", "k", "in b", time.Time{})
	// Keys and namespaces must not run together ("a"+"b:k" vs "a:b"+"k").
	mustPut(t, h, "a", "b:k", "a/b:k", time.Time{})
	wantValue(t, h, "a", "k", "in a")
	wantValue(t, h, "b", "k", "in b")
	wantNotFound(t, h, "c", "k")
	if err := h.Delete(ctx, "a", "k"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, h, "b", "k", "in b")
	wantValue(t, h, "a", "b:k", "a/b:k")
}

func testValuesCopied(t *testing.T, h *harness) {
	v := []byte("original")
	if err := h.Put(ctx, "ns", "k", v, time.Time{}); err != nil {
		t.Fatal(err)
	}
	copy(v, "CHANGED!")
	got, err := h.Get(ctx, "ns", "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "CHANGED!")
	wantValue(t, h, "ns", "k", "original")
}

func testBadNamespace(t *testing.T, h *harness) {
	for _, ns := range []string{"", "a:b", "a*", "a b", "a\x00"} {
		if err := h.Put(ctx, ns, "k", []byte("v"), time.Time{}); err == nil {
			t.Errorf("Put in namespace %q: no error, want one", ns)
		}
	}
	for _, key := range []string{"", strings.Repeat("k", store.MaxKeyLen+1)} {
		if err := h.Put(ctx, "ns", key, []byte("v"), time.Time{}); err == nil {
			t.Errorf("Put under a key of %d bytes: no error, want one", len(key))
		}
	}
	mustPut(t, h, "ns", strings.Repeat("k", store.MaxKeyLen), "longest", time.Time{})
	wantValue(t, h, "ns", strings.Repeat("k", store.MaxKeyLen), "longest")
}

func testExpiry(t *testing.T, h *harness) {
	ttl := h.ttl()
	now := h.clock.Now()
	mustPut(t, h, "ns", "short", "s", now.Add(ttl))
	mustPut(t, h, "ns", "take", "t", now.Add(ttl))
	mustPut(t, h, "ns", "forever", "f", time.Time{})
	mustPut(t, h, "ns", "long", "l", now.Add(1000*ttl))
	mustPut(t, h, "ns", "past", "p", now.Add(-time.Second))
	wantNotFound(t, h, "ns", "past")
	wantValue(t, h, "ns", "short", "s")

	// Replacing a value with a past expiry removes it.
	mustPut(t, h, "ns", "gone", "g", time.Time{})
	mustPut(t, h, "ns", "gone", "g2", now.Add(-time.Second))
	wantNotFound(t, h, "ns", "gone")

	h.clock.Advance(ttl + ttl/2)
	wantNotFound(t, h, "ns", "short")
	if v, err := h.Take(ctx, "ns", "take"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take of an expired key = %q, %v; want ErrNotFound", v, err)
	}
	wantValue(t, h, "ns", "forever", "f")
	wantValue(t, h, "ns", "long", "l")
	if got := scanAll(t, h, "ns", ""); fmt.Sprint(got) != "[forever=f long=l]" {
		t.Errorf("Scan after expiry = %v, want only the live keys [forever=f long=l]", got)
	}
	if sw, ok := h.Backend.(store.Sweeper); ok {
		n, err := sw.Sweep(ctx)
		if err != nil || n != 1 { // "short"; "take" was removed by Take
			t.Errorf("Sweep = %d, %v; want 1 removed", n, err)
		}
		wantValue(t, h, "ns", "forever", "f")
	}
}

func testTake(t *testing.T, h *harness) {
	mustPut(t, h, "codes", "c", "code", time.Time{})
	got, err := h.Take(ctx, "codes", "c")
	if err != nil || string(got) != "code" {
		t.Fatalf("Take = %q, %v; want \"code\"", got, err)
	}
	if got, err := h.Take(ctx, "codes", "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take = %q, %v; want ErrNotFound", got, err)
	}
	wantNotFound(t, h, "codes", "c")
	if _, err := h.Take(ctx, "codes", "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of an absent key: %v, want ErrNotFound", err)
	}
}

func testTakeConcurrent(t *testing.T, h *harness) {
	const keys, takers = 10, 16
	for k := range keys {
		key := fmt.Sprint("code-", k)
		mustPut(t, h, "codes", key, "v"+key, time.Time{})
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range takers {
			b := h.Backend
			if i%2 == 1 {
				b = h.replica
			}
			wg.Go(func() {
				<-start
				v, err := b.Take(ctx, "codes", key)
				switch {
				case err == nil:
					if string(v) != "v"+key {
						t.Errorf("Take(%s) = %q, want %q", key, v, "v"+key)
					}
					wins.Add(1)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("Take(%s): %v, want the value or ErrNotFound", key, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d concurrent Takes of %s: %d got the value, want exactly 1", takers, key, n)
		}
	}
}

func scanAll(t *testing.T, b store.Backend, ns, prefix string) []string {
	t.Helper()
	m := map[string]string{}
	err := b.Scan(ctx, ns, prefix, func(k string, v []byte) error {
		if _, dup := m[k]; dup {
			t.Errorf("Scan(%s, %q) visited %q twice", ns, prefix, k)
		}
		m[k] = string(v)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%s, %q): %v", ns, prefix, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	got := make([]string, len(keys))
	for i, k := range keys {
		got[i] = k + "=" + m[k]
	}
	return got
}

func testScan(t *testing.T, h *harness) {
	for _, k := range []string{"u1/a", "u1/b", "u10/a", "u2/a", "u1"} {
		mustPut(t, h, "tok", k, "v"+k, time.Time{})
	}
	mustPut(t, h, "other", "u1/c", "x", time.Time{})
	if got, want := fmt.Sprint(scanAll(t, h, "tok", "u1/")), "[u1/a=vu1/a u1/b=vu1/b]"; got != want {
		t.Errorf("Scan(u1/) = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(scanAll(t, h, "tok", "u1")), "[u1=vu1 u1/a=vu1/a u1/b=vu1/b u10/a=vu10/a]"; got != want {
		t.Errorf("Scan(u1) = %s, want %s", got, want)
	}
	if got := scanAll(t, h, "tok", ""); len(got) != 5 {
		t.Errorf("Scan(\"\") = %v, want all 5 keys", got)
	}
	if got := scanAll(t, h, "tok", "zz"); len(got) != 0 {
		t.Errorf("Scan(zz) = %v, want nothing", got)
	}
	if got := scanAll(t, h, "unused", ""); len(got) != 0 {
		t.Errorf("Scan of an unused namespace = %v, want nothing", got)
	}
}

// testScanLiteral: a prefix with glob characters matches only itself (Redis
// SCAN MATCH takes a pattern; the backend must escape it).
func testScanLiteral(t *testing.T, h *harness) {
	for _, k := range []string{"a*1", "ab", "a?2", "ac", "a[b]3", "a\\4", "a\\x"} {
		mustPut(t, h, "ns", k, "v", time.Time{})
	}
	for prefix, want := range map[string]string{
		"a*":   "[a*1=v]",
		"a?":   "[a?2=v]",
		"a[b]": "[a[b]3=v]",
		"a[":   "[a[b]3=v]",
		"a\\":  "[a\\4=v a\\x=v]",
		"a\\4": "[a\\4=v]",
	} {
		if got := fmt.Sprint(scanAll(t, h, "ns", prefix)); got != want {
			t.Errorf("Scan(%q) = %s, want %s", prefix, got, want)
		}
	}
}

func testScanError(t *testing.T, h *harness) {
	for i := range 5 {
		mustPut(t, h, "ns", fmt.Sprint("k", i), "v", time.Time{})
	}
	stop := errors.New("stop")
	calls := 0
	err := h.Scan(ctx, "ns", "", func(string, []byte) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Scan with fn failing: err %v after %d calls; want fn's error after 1 call", err, calls)
	}
}

func testScanModify(t *testing.T, h *harness) {
	for i := range 20 {
		mustPut(t, h, "ns", fmt.Sprint("k", i), "v", time.Time{})
	}
	// Deleting a user's tokens while listing them is what disconnect does.
	err := h.Scan(ctx, "ns", "k", func(k string, _ []byte) error {
		return h.Delete(ctx, "ns", k)
	})
	if err != nil {
		t.Fatalf("Scan deleting each key: %v", err)
	}
	if got := scanAll(t, h, "ns", ""); len(got) != 0 {
		t.Errorf("after deleting every scanned key, Scan = %v, want nothing", got)
	}
}

func lockOrFatal(t *testing.T, b store.Backend, name string, ttl time.Duration) func() {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unlock, err := b.Lock(c, name, ttl)
	if err != nil {
		t.Fatalf("Lock(%s): %v", name, err)
	}
	return unlock
}

// wantLockBusy checks that name is held: a Lock with a short deadline
// gives up with the context's error.
func wantLockBusy(t *testing.T, b store.Backend, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	unlock, err := b.Lock(c, name, time.Minute)
	if err == nil {
		unlock()
		t.Fatalf("Lock(%s) succeeded while another holder has it", name)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock(%s) while held: %v, want an error wrapping context.DeadlineExceeded", name, err)
	}
}

func testLockExclusive(t *testing.T, h *harness) {
	const workers, rounds = 8, 5
	var inside, maxInside, total atomic.Int32
	var wg sync.WaitGroup
	for i := range workers {
		b := h.Backend
		if i%2 == 1 {
			b = h.replica
		}
		wg.Go(func() {
			for range rounds {
				c, cancel := context.WithTimeout(ctx, 20*time.Second)
				unlock, err := b.Lock(c, "refresh:k", time.Minute)
				cancel()
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				total.Add(1)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if m := maxInside.Load(); m != 1 {
		t.Errorf("%d holders inside the lock at once, want 1", m)
	}
	if n := total.Load(); n != workers*rounds {
		t.Errorf("%d critical sections ran, want %d", n, workers*rounds)
	}
}

func testLockWaits(t *testing.T, h *harness) {
	unlock := lockOrFatal(t, h, "L", time.Minute)
	got := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		u, err := h.replica.Lock(c, "L", time.Minute)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned (%v) while the first holder still has it", err)
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("second Lock after unlock: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock did not get the lease within 5s of unlock")
	}
	unlock() // a second unlock is harmless
	u := lockOrFatal(t, h, "L", time.Minute)
	u()
}

func testLockContext(t *testing.T, h *harness) {
	unlock := lockOrFatal(t, h, "L", time.Minute)
	defer unlock()
	wantLockBusy(t, h.replica, "L")
	c, cancel := context.WithCancel(ctx)
	cancel()
	if u, err := h.Lock(c, "L", time.Minute); !errors.Is(err, context.Canceled) {
		if err == nil {
			u()
		}
		t.Fatalf("Lock with a cancelled context: %v, want context.Canceled", err)
	}
}

func testLockNames(t *testing.T, h *harness) {
	a := lockOrFatal(t, h, "A", time.Minute)
	b := lockOrFatal(t, h.replica, "B", time.Minute)
	wantLockBusy(t, h, "A")
	wantLockBusy(t, h, "B")
	a()
	b()
}

// testLockExpired: a holder that outlived its lease (a stalled replica)
// must not release the lease another holder took after it expired.
func testLockExpired(t *testing.T, h *harness) {
	ttl := h.ttl() / 3
	stale := lockOrFatal(t, h, "L", ttl)
	h.clock.Advance(ttl + ttl/2)
	fresh := lockOrFatal(t, h.replica, "L", time.Minute)
	stale()
	wantLockBusy(t, h, "L")
	fresh()
	u := lockOrFatal(t, h, "L", time.Minute)
	u()
}

func testLockBadTTL(t *testing.T, h *harness) {
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
		if u, err := h.Lock(ctx, "L", ttl); err == nil {
			u()
			t.Errorf("Lock with ttl %v: no error, want one", ttl)
		}
	}
}

func testClosed(t *testing.T, h *harness) {
	mustPut(t, h, "ns", "k", "v", time.Time{})
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
	checks := map[string]error{}
	_, checks["Get"] = h.Get(ctx, "ns", "k")
	checks["Put"] = h.Put(ctx, "ns", "k", []byte("v"), time.Time{})
	_, checks["Take"] = h.Take(ctx, "ns", "k")
	checks["Delete"] = h.Delete(ctx, "ns", "k")
	checks["Scan"] = h.Scan(ctx, "ns", "", func(string, []byte) error { return nil })
	_, checks["Lock"] = h.Lock(ctx, "L", time.Minute)
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", op, err)
		}
	}
}
