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
			set := setter{t, rc}
			var key []byte
			if sealed {
				key = newKey()
			}
			const n = 1200 // more than one SCAN batch
			want := map[string]string{}
			for i := range n {
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
			if sealed {
				marker = "mcp-proxy redisstore: this value opens with the right key"
			}
			writeLayout1(t, set, key, "p", "!meta", "seal", marker, 0)
			// Another deployment, "p:staging", and a key of another key file.
			writeLayout1(t, set, key, "p:staging", "!meta", "seal", marker, 0)
			writeLayout1(t, set, key, "p:staging", "upstream", "bob", "staging's", 0)
			if sealed {
				writeLayout1(t, set, newKey(), "p", "upstream", "foreign", "not ours", 0)
			}

			const replicas = 4
			var wg sync.WaitGroup
			stores := make([]*redisstore.Store, replicas)
			errs := make([]error, replicas)
			for i := range replicas {
				wg.Go(func() {
					stores[i], errs[i] = redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: "p", Key: key})
				})
			}
			wg.Wait()
			moved := 0
			for i, s := range stores {
				if errs[i] != nil {
					t.Fatalf("Open %d: %v", i, errs[i])
				}
				t.Cleanup(func() { s.Close() })
				moved += s.Migration().Moved
			}
			if moved != n+1 {
				t.Errorf("the replicas moved %d records in all, want each of %d exactly once", moved, n+1)
			}
			if sealed {
				if left := stores[0].Migration().Left + stores[1].Migration().Left + stores[2].Migration().Left + stores[3].Migration().Left; left != 1 {
					t.Errorf("%d keys left in place, want 1 (the foreign one)", left)
				}
			}

			s := stores[replicas-1]
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
		})
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
