package store_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/storetest"
)

// The memory store meets the contract every store backend meets (storetest).
func TestMemoryStoreMeetsTheBackendContract(t *testing.T) {
	storetest.Run(t, storetest.Suite{
		Open: func(t *testing.T, clock *storetest.Clock) store.Backend { return store.NewMemoryClock(clock.Now) },
	})
}

// brokenTake is a Memory whose Take reads, then deletes: two callers can
// both get the value. brokenLock's leases exclude nobody.
type brokenTake struct{ *store.Memory }

func (b brokenTake) Take(ctx context.Context, ns, key string) ([]byte, error) {
	v, err := b.Get(ctx, ns, key)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Millisecond)
	return v, b.Delete(ctx, ns, key)
}

type brokenLock struct{ *store.Memory }

func (brokenLock) Lock(context.Context, string, time.Duration) (func(), error) { return func() {}, nil }

// TestSuiteCatchesBrokenBackends proves that the conformance suite can
// fail: it runs the suite on two deliberately broken backends in a child
// test process and expects the child to fail exactly the cases that check
// what they break.
func TestSuiteCatchesBrokenBackends(t *testing.T) {
	for _, c := range []struct{ backend, wantFail string }{
		{"take", "TestBrokenBackend/TakeIsSingleUse"},
		{"lock", "TestBrokenBackend/LockIsExclusive"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+c.backend)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("the suite passed a backend with a broken %s:\n%s", c.backend, out)
			continue
		}
		if !strings.Contains(string(out), "--- FAIL: "+c.wantFail) {
			t.Errorf("broken %s: %s did not fail:\n%s", c.backend, c.wantFail, out)
		}
	}
}

// TestBrokenBackend runs the suite on a broken backend when
// TestSuiteCatchesBrokenBackends asks for it, and does nothing otherwise.
func TestBrokenBackend(t *testing.T) {
	which := os.Getenv("STORETEST_BROKEN")
	if which == "" {
		return
	}
	storetest.Run(t, storetest.Suite{
		Open: func(t *testing.T, clock *storetest.Clock) store.Backend {
			m := store.NewMemoryClock(clock.Now)
			if which == "take" {
				return brokenTake{m}
			}
			return brokenLock{m}
		},
	})
}
