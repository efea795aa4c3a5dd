package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore/redistest"
)

// Through Sentinel, the store finds the primary, and when the Sentinels
// fail it over, follows the new one: every record written before is there,
// and writes go on, with no new Store.
func TestSentinelFollowsFailover(t *testing.T) {
	set := redistest.StartSentinelSet(t, "s3cret")
	for _, how := range []string{"the primary killed", "SENTINEL FAILOVER"} {
		t.Run(how, func(t *testing.T) {
			t0 := time.Now()
			if err := set.WaitReplicated(ctx, 30*time.Second); err != nil {
				t.Fatalf("the set is not replicated: %v", err)
			}
			t.Logf("replicated after %v", time.Since(t0))
			s, err := redisstore.OpenSentinel(ctx, redisstore.Sentinel{MasterName: set.MasterName, Addrs: set.SentinelAddrs(), Password: "s3cret"},
				redisstore.Options{Prefix: fmt.Sprint("t", prefixes.Add(1)), Key: newKey()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			for i := range 50 {
				if err := s.Put(ctx, "upstream", fmt.Sprint("user-", i), []byte(fmt.Sprint("token-", i)), time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			old, err := set.Primary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Replication is asynchronous: what the primary acknowledged
			// but did not pass on is lost in a failover, in Redis's own
			// terms. WAIT makes the writes above reach the replica.
			if n, err := old.Do(ctx, "WAIT", "1", "3000"); err != nil || n != "1" {
				t.Fatalf("WAIT 1: %q, %v", n, err)
			}
			if how == "SENTINEL FAILOVER" {
				if _, err := set.Failover(ctx); err != nil {
					t.Fatalf("failover: %v", err)
				}
			} else {
				old.Kill()
				if _, err := set.WaitPrimary(ctx, old, 30*time.Second); err != nil {
					t.Fatalf("the Sentinels did not promote the replica: %v", err)
				}
			}
			t.Logf("failed over after %v", time.Since(t0))
			// The store follows within a few retries: connections to the
			// old primary are closed or refused, new ones ask the
			// Sentinels.
			var last error
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				if last = s.Put(ctx, "upstream", "after", []byte("v"), time.Time{}); last == nil {
					break
				}
				if !errors.Is(last, store.ErrUnavailable) {
					t.Fatalf("Put during the failover: %v; want ErrUnavailable or success", last)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if last != nil {
				t.Fatalf("Put after the failover: %v", last)
			}
			t.Logf("written after %v", time.Since(t0))
			for i := range 50 {
				v, err := s.Get(ctx, "upstream", fmt.Sprint("user-", i))
				if err != nil || string(v) != fmt.Sprint("token-", i) {
					t.Fatalf("Get(user-%d) after the failover = %q, %v", i, v, err)
				}
			}
			if how == "the primary killed" {
				// It comes back as the new primary's replica.
				if err := set.Rejoin(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Sentinels that do not answer are refused at Open, quickly, with an
// error naming the primary and what to check, never the password.
func TestSentinelUnreachableRefusedAtOpen(t *testing.T) {
	start := time.Now()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := redisstore.OpenSentinel(c, redisstore.Sentinel{MasterName: "mcp-proxy", Addrs: []string{closedPort(t), closedPort(t)}, Password: "s3cret-password"}, redisstore.Options{})
	if err == nil {
		t.Fatal("OpenSentinel with no Sentinel listening succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), `the Redis primary "mcp-proxy" of the Sentinels at`) ||
		!strings.Contains(err.Error(), "check that the Sentinels run") {
		t.Errorf("error = %q; want ErrUnavailable naming the primary and the Sentinels", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("OpenSentinel took %v to report Sentinels that refuse connections", d)
	}
}
