package load

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Snapshot is the proxy's process figures from its admin listener (the
// Prometheus Go and process collectors).
type Snapshot struct {
	Goroutines int
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	RSS        float64 // process_resident_memory_bytes
}

// MetricsFunc scrapes the proxy's metrics, by family name.
type MetricsFunc func() (map[string]*dto.MetricFamily, error)

// Take reads one snapshot.
func Take(scrape MetricsFunc) (Snapshot, error) {
	fams, err := scrape()
	if err != nil {
		return Snapshot{}, err
	}
	one := func(name string) (float64, error) {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			return 0, fmt.Errorf("the proxy's metrics have no %s (is the Go collector registered?)", name)
		}
		m := f.Metric[0]
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Untyped != nil:
			return m.Untyped.GetValue(), nil
		}
		return 0, fmt.Errorf("%s is neither a gauge nor a counter", name)
	}
	var s Snapshot
	g, err := one("go_goroutines")
	if err != nil {
		return s, err
	}
	s.Goroutines = int(g)
	if s.HeapInuse, err = one("go_memstats_heap_inuse_bytes"); err != nil {
		return s, err
	}
	if s.RSS, err = one("process_resident_memory_bytes"); err != nil {
		return s, err
	}
	return s, nil
}

// Settle waits, at most limit, until the proxy's goroutine count has
// stopped changing (the same in two readings every interval apart), and
// returns the last snapshot.
func Settle(ctx context.Context, scrape MetricsFunc, interval, limit time.Duration) (Snapshot, error) {
	prev, err := Take(scrape)
	if err != nil {
		return prev, err
	}
	deadline := time.Now().Add(limit)
	t := time.NewTicker(interval)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case <-t.C:
		}
		cur, err := Take(scrape)
		if err != nil {
			return cur, err
		}
		if cur.Goroutines == prev.Goroutines {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// LeakRule bounds what the proxy may keep once load stops, next to what
// it held before the load began, with the same clients connected and idle.
type LeakRule struct {
	// Goroutines may grow by at most GoroutineSlack.
	GoroutineSlack int
	// The heap in use may grow to at most HeapFactor × before +
	// HeapSlack bytes: it is read without forcing a collection, so it
	// holds what the last cycle left plus garbage since.
	HeapFactor float64
	HeapSlack  float64
}

// DefaultLeakRule is make load's: 50 goroutines (the proxy's pools and
// timers come and go), and the heap at most twice what it was plus 64 MiB.
var DefaultLeakRule = LeakRule{GoroutineSlack: 50, HeapFactor: 2, HeapSlack: 64 << 20}

// Check says why after is a leak next to before, or nil.
func (r LeakRule) Check(before, after Snapshot) error {
	if after.Goroutines > before.Goroutines+r.GoroutineSlack {
		return fmt.Errorf("goroutines grew from %d to %d once the load stopped (bound: +%d)",
			before.Goroutines, after.Goroutines, r.GoroutineSlack)
	}
	if limit := before.HeapInuse*r.HeapFactor + r.HeapSlack; after.HeapInuse > limit {
		return fmt.Errorf("the heap in use grew from %s to %s once the load stopped (bound: %s)",
			MiB(before.HeapInuse), MiB(after.HeapInuse), MiB(limit))
	}
	return nil
}

// MiB formats bytes in MiB.
func MiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// CounterBy sums the samples of the counter family name by the value of
// label, from one scrape.
func CounterBy(scrape MetricsFunc, name, label string) (map[string]float64, error) {
	fams, err := scrape()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && m.Counter != nil {
					out[l.GetValue()] += m.Counter.GetValue()
				}
			}
		}
	}
	return out, nil
}

// Delta is after - before, key by key.
func Delta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// Counts formats counts as "a 3, b 1", the largest first; "none" when
// every count is zero.
func Counts(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return cmp.Compare(m[b], m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.0f", k, m[k])
	}
	return strings.Join(parts, ", ")
}
