package redisstore_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore"
	"github.com/mcp-proxy/mcp-proxy/proxy/store/redisstore/redistest"
)

// writeLayout1 writes a record as mcp-proxy wrote it before names were
// hashed: at "<prefix>:<ns>:<key>", one format byte (0 plain, 1 sealed)
// and the value, sealed with additional data ns+"\x00"+key.
func writeLayout1(t *testing.T, rc interface {
	Set(string, []byte, time.Duration) error
}, key []byte, prefix, ns, k, v string, ttl time.Duration) {
	t.Helper()
	raw := append([]byte{0}, v...)
	if key != nil {
		sealer, err := store.NewSealer(key)
		if err != nil {
			t.Fatal(err)
		}
		raw = sealer.Seal([]byte{1}, []byte(v), []byte(ns+"\x00"+k))
	}
	if err := rc.Set(prefix+":"+ns+":"+k, raw, ttl); err != nil {
		t.Fatal(err)
	}
}

// A Redis written by the earlier layout (names in the clear) is moved to
// hashed names when the store opens: every record is read through the new
// layout with its expiry, the old names are gone, and several replicas
// opening at once move each record exactly once. Keys of another
// deployment whose prefix starts with this one's, and keys whose values do
// not open with this key, are left alone.
func TestOpenMovesLayout1Records(t *testing.T) {
	for _, sealed := range []bool{true, false} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			srv := redistest.Start(t)
			rc := raw(t, srv.URL())
			var key []byte
			if sealed {
				key = newKey()
			}
			want := writeLayout1Deployment(t, setter{t, rc}, key)
			stores := openReplicasAtOnce(t, srv.URL(), key, 4)
			moved, left := 0, 0
			for _, s := range stores {
				moved += s.Migration().Moved
				left += s.Migration().Left
			}
			if moved != len(want)+1 {
				t.Errorf("the replicas moved %d records in all, want each of %d exactly once", moved, len(want)+1)
			}
			if sealed && left != 1 {
				t.Errorf("%d keys left in place, want 1 (the foreign one)", left)
			}
			checkMovedRecords(t, stores[len(stores)-1], want)
			checkNoNamesInTheClear(t, rc)
		})
	}
}

// writeLayout1Deployment writes, in the earlier layout under prefix "p",
// 1,200 records (more than one SCAN batch) of three namespaces, a code
// with an expiry and the sealing marker; and, to be left alone, another
// deployment "p:staging" and (sealed) a key of another key file. It
// returns the 1,200 records by "ns/key".
func writeLayout1Deployment(t *testing.T, set setter, key []byte) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range 1200 {
		ns := []string{"upstream", "access", "sessions"}[i%3]
		k := fmt.Sprintf("per_user\x00mcp.example.com\x00user-%04d\x00https://remote-mcp.provider.com/mcp", i)
		if ns != "upstream" {
			k = store.SecretKey(k)
		}
		want[ns+"/"+k] = "value-" + fmt.Sprint(i)
		writeLayout1(t, set, key, "p", ns, k, want[ns+"/"+k], 0)
	}
	writeLayout1(t, set, key, "p", "codes", "expiring", "code", time.Hour)
	// The sealing marker as the earlier version wrote it.
	marker := "plain v1"
	if key != nil {
		marker = "mcp-proxy redisstore: this value opens with the right key"
	}
	writeLayout1(t, set, key, "p", "!meta", "seal", marker, 0)
	writeLayout1(t, set, key, "p:staging", "!meta", "seal", marker, 0)
	writeLayout1(t, set, key, "p:staging", "upstream", "bob", "staging's", 0)
	if key != nil {
		writeLayout1(t, set, newKey(), "p", "upstream", "foreign", "not ours", 0)
	}
	return want
}

// openReplicasAtOnce opens n stores on prefix "p" at the same time, as
// replicas starting together do.
func openReplicasAtOnce(t *testing.T, url string, key []byte, n int) []*redisstore.Store {
	t.Helper()
	var wg sync.WaitGroup
	stores := make([]*redisstore.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = redisstore.Open(ctx, url, redisstore.Options{Prefix: "p", Key: key})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	return stores
}

// checkMovedRecords reads the moved records back by Get, Scan and Take.
func checkMovedRecords(t *testing.T, s *redisstore.Store, want map[string]string) {
	t.Helper()
	for nsk, v := range want {
		ns, k, _ := strings.Cut(nsk, "/")
		got, err := s.Get(ctx, ns, k)
		if err != nil || string(got) != v {
			t.Fatalf("Get(%s) after the move = %q, %v; want %q", nsk, got, err, v)
		}
	}
	scanned := 0
	err := s.Scan(ctx, "upstream", "per_user\x00mcp.example.com\x00user-00", func(k string, v []byte) error {
		if want["upstream/"+k] != string(v) {
			t.Errorf("Scan: %q = %q, want %q", k, v, want["upstream/"+k])
		}
		scanned++
		return nil
	})
	if err != nil || scanned != 34 { // user-0000 … user-0099, every third
		t.Errorf("Scan of a user prefix after the move: %d records, %v; want 34", scanned, err)
	}
	if got, err := s.Take(ctx, "codes", "expiring"); err != nil || string(got) != "code" {
		t.Errorf("Take(codes/expiring) = %q, %v", got, err)
	}
}

// checkNoNamesInTheClear: after the move only the other deployment's keys,
// the foreign key, the store's own "!" keys and hashed names are left.
func checkNoNamesInTheClear(t *testing.T, rc *redis.Client) {
	t.Helper()
	for _, k := range keys(t, rc) {
		switch {
		case strings.HasPrefix(k, "p:staging:"), k == "p:upstream:foreign":
		case strings.HasPrefix(k, "p:!"), strings.Contains(k, "#"):
		default:
			t.Errorf("after the move Redis still holds %q", k)
		}
		if strings.Contains(k, "user-") && !strings.HasPrefix(k, "p:staging:") {
			t.Errorf("a name in the clear is left: %q", k)
		}
	}
	if v, err := rc.Get(ctx, "p:staging:upstream:bob").Bytes(); err != nil || len(v) == 0 {
		t.Errorf("the other deployment's record: %q, %v; want it untouched", v, err)
	}
}

// A record keeps its remaining time to live when it moves.
func TestMoveKeepsExpiry(t *testing.T) {
	srv := redistest.Start(t)
	rc := raw(t, srv.URL())
	writeLayout1(t, setter{t, rc}, nil, "p", "codes", "c", "v", time.Hour)
	writeLayout1(t, setter{t, rc}, nil, "p", "codes", "forever", "v", 0)
	open(t, srv.URL(), redisstore.Options{Prefix: "p"})
	ttls := map[time.Duration]int{}
	for _, k := range keys(t, rc) {
		if strings.HasPrefix(k, "p:codes#") {
			ttl := rc.PTTL(ctx, k).Val()
			switch {
			case ttl > 59*time.Minute && ttl <= time.Hour:
				ttls[time.Hour]++
			case ttl < 0:
				ttls[-1]++
			default:
				t.Errorf("%s: PTTL %v", k, ttl)
			}
		}
	}
	if ttls[time.Hour] != 1 || ttls[-1] != 1 {
		t.Errorf("after the move: %v records by TTL; want one of an hour and one without expiry", ttls)
	}
}

// setter writes raw values with a client of the test's own.
type setter struct {
	t  *testing.T
	rc *redis.Client
}

func (s setter) Set(k string, v []byte, ttl time.Duration) error {
	return s.rc.Set(ctx, k, v, ttl).Err()
}
