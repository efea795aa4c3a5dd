package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The large answers of the large results benchmark: a tool's result of
// 5 MB and a resource of 50 MB, through each hop on the canned route.
const (
	LargeTool          = "large-result"
	LargeToolBytes     = 5_000_000
	LargeResource      = "bench://large-resource"
	LargeResourceBytes = 50_000_000
)

var (
	largeMu    sync.Mutex
	largeCache = map[[2]int][]byte{}
)

// LargeAnswer is a JSON-RPC result of exactly n bytes; for a stream, one
// server-sent event of n bytes holding it.
func LargeAnswer(n int, stream bool) []byte {
	largeMu.Lock()
	defer largeMu.Unlock()
	key := [2]int{n, 0}
	head, tail := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"`, `"}]}}`
	if stream {
		key[1], head, tail = 1, "data: "+head, tail+"\n\n"
	}
	if b, ok := largeCache[key]; ok {
		return b
	}
	b := append([]byte(head), bytes.Repeat([]byte("x"), n-len(head)-len(tail))...)
	b = append(b, tail...)
	largeCache[key] = b
	return b
}

// LargeRow is one hop's throughput for one answer over one client leg.
type LargeRow struct {
	What, Proto, Target string
	Bytes               int
	// MBps are each round's throughput; VsDirect each round's ratio to
	// direct's, measured next to it.
	MBps, VsDirect []float64
	// PeakGrowth is the most the hop's resident memory grew above what it
	// was before the transfer, over the rounds, in bytes.
	PeakGrowth int64
}

// RunLarge measures each large answer through every target, rounds times,
// the targets alternating.
func (h *Harness) RunLarge(ctx context.Context, rounds int, progress io.Writer) ([]LargeRow, error) {
	targets := slices.DeleteFunc(h.Targets(), func(t string) bool {
		// The policy and tracing targets have routes to the canned answer
		// only; the large answers' budget is against PooledHop
		// (largeVsPooled), so its HTTP/1.1-upstream twin would only
		// lengthen the run.
		return t == ProxyPolicy || t == ProxyTrace10 || t == ProxyTrace100 || t == PooledH1Hop
	})
	var rows []LargeRow
	for _, proto := range []string{"h1", "h2"} {
		for _, a := range []struct {
			what, body string
			n          int
			stream     bool
		}{
			{"5 MB tool result", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + LargeTool + `","arguments":{}}}`, LargeToolBytes, false},
			{"50 MB resource stream", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"` + LargeResource + `"}}`, LargeResourceBytes, true},
		} {
			byTarget := map[string]*LargeRow{}
			for _, t := range targets {
				byTarget[t] = &LargeRow{What: a.what, Proto: proto, Target: t, Bytes: a.n}
			}
			for round := range rounds {
				direct := 0.0
				for i := range targets {
					t := targets[(i+round)%len(targets)]
					mbps, growth, err := h.transfer(ctx, t, proto, a.body, a.n, max(2, 40_000_000/a.n))
					if err != nil {
						return nil, fmt.Errorf("large %s %s %s: %w", a.what, proto, t, err)
					}
					r := byTarget[t]
					r.MBps = append(r.MBps, mbps)
					r.PeakGrowth = max(r.PeakGrowth, growth)
					if t == Direct {
						direct = mbps
					}
				}
				for _, t := range targets {
					r := byTarget[t]
					r.VsDirect = append(r.VsDirect, r.MBps[len(r.MBps)-1]/direct)
				}
			}
			for _, t := range targets {
				r := byTarget[t]
				if progress != nil {
					fmt.Fprintf(progress, "bench: large %s %s %-10s %.0f MB/s, %.2fx direct, memory +%.1f MiB at most\n",
						a.what, proto, t, median(r.MBps), median(r.VsDirect), float64(r.PeakGrowth)/(1<<20))
				}
				rows = append(rows, *r)
			}
		}
	}
	return rows, nil
}

// transfer fetches a large answer times through target, one after the
// other over one connection (fresh: its handshake is counted), checks
// their length, and returns the throughput (MB/s) and how far the hop's
// resident memory rose above where it was.
func (h *Harness) transfer(ctx context.Context, target, proto, body string, want, times int) (float64, int64, error) {
	host := h.targetHost("canned", target)
	token := h.DirectToken
	if target == Proxy {
		token = h.ProxyTokens[host]
	}
	tr := h.legTransport(host, proto)
	defer tr.CloseIdleConnections()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, h.addrs[host])
	}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	stop := h.watchRSS(hopKey(target))
	start := time.Now()
	for range times {
		if err := fetch(ctx, hc, "https://"+host+"/mcp", token, body, want); err != nil {
			stop()
			return 0, 0, err
		}
	}
	secs := time.Since(start).Seconds()
	growth := stop()
	return float64(want*times) / secs / 1e6, growth, nil
}

// fetch posts body to url and reads the whole answer, which must be of
// want bytes.
func fetch(ctx context.Context, hc *http.Client, url, token, body string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != int64(want) {
		return fmt.Errorf("%s, %d of %d bytes: %v", resp.Status, n, want, err)
	}
	return nil
}

// legTransport is a client transport trusting the run's CA over HTTP/1.1
// or HTTP/2.
func (h *Harness) legTransport(host, proto string) *http.Transport {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.ca.Pool(), ServerName: host}, DisableCompression: true}
	if proto == "h2" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

// watchRSS samples key's resident memory every 10 ms until the returned
// function is called, which returns the highest sample over the first.
func (h *Harness) watchRSS(key string) func() int64 {
	if key == "" {
		return func() int64 { return 0 }
	}
	procs, _ := group(h.PID(key))
	read := func() int64 {
		var total int64
		for dir := range procs {
			if b, err := os.ReadFile(filepath.Join(dir, "statm")); err == nil {
				if f := strings.Fields(string(b)); len(f) > 1 {
					pages, _ := strconv.ParseInt(f[1], 10, 64)
					total += pages * int64(os.Getpagesize())
				}
			}
		}
		return total
	}
	base := read()
	peak := base
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				peak = max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() int64 { close(done); <-stopped; return peak - base }
}

// The large results budget (docs/performance.md).
const (
	// MinLargeVsPooled is the least throughput through mcp-proxy, as a
	// share of the pooled hop's: the hop with the same net/http server,
	// transport, TLS and pool of copy buffers, so that what is left is the
	// proxy's own work. (Direct has no hop at all: every byte is encrypted
	// and decrypted once less, by one process less on the same cores; its
	// ratio is printed for information.)
	MinLargeVsPooled = 0.9
	// MaxLargeGrowth bounds how far mcp-proxy's resident memory may rise
	// during a transfer, whatever its size.
	MaxLargeGrowth = 8 << 20
)

// WriteLarge prints the large results table, mcp-proxy's throughput
// against direct's for information, and the budget's checks.
func WriteLarge(w io.Writer, rows []LargeRow, rounds int) {
	fmt.Fprintf(w, "\nbench: large answers on the canned route, one at a time over a fresh connection (5 MB 8 times, 50 MB twice), medians of %d alternating rounds; ratios are medians of each round's ratio; memory: the most the hop's resident memory rose during a transfer\n", rounds)
	fmt.Fprintln(w, "| answer | client leg | hop | MB/s | ÷ direct | ÷ pooled hop | memory growth MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		vsPooled := "—"
		if v, ok := largeVsPooled(rows, r); ok {
			vsPooled = fmt.Sprintf("%.2f×", v)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.2f× | %s | %.1f |\n", r.What, legName[r.Proto], r.Target, median(r.MBps), median(r.VsDirect), vsPooled, float64(r.PeakGrowth)/(1<<20))
	}
	for _, r := range rows {
		if r.Target == Proxy && len(r.VsDirect) > 0 {
			fmt.Fprintf(w, "bench: info large %s %s: mcp-proxy %.2fx direct throughput (no budget: direct has no hop)\n", r.What, legName[r.Proto], median(r.VsDirect))
		}
	}
	for _, c := range LargeChecks(rows) {
		verdict := "PASS"
		if !c.OK {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "bench: %s %s\n", verdict, c.What)
	}
}

// LargeChecks are the large results budget's checks on mcp-proxy's rows:
// its throughput against the pooled hop's (when the pooled hop ran), and
// its memory.
func LargeChecks(rows []LargeRow) []Check {
	var out []Check
	for _, r := range rows {
		if r.Target != Proxy {
			continue
		}
		if v, ok := largeVsPooled(rows, r); ok {
			out = append(out, Check{fmt.Sprintf("large %s %s: mcp-proxy %.2fx the pooled hop's throughput (budget >= %.2fx)", r.What, legName[r.Proto], v, MinLargeVsPooled), v >= MinLargeVsPooled})
		}
		out = append(out, Check{fmt.Sprintf("large %s %s: mcp-proxy's memory rose %.1f MiB at most (budget <= %d MiB, whatever the size)", r.What, legName[r.Proto], float64(r.PeakGrowth)/(1<<20), MaxLargeGrowth>>20), r.PeakGrowth <= MaxLargeGrowth})
	}
	return out
}

// largeVsPooled is r's throughput as a share of the pooled hop's for the
// same answer over the same leg: the median of each round's ratio, the
// two measured next to each other; false when the pooled hop has no such
// row.
func largeVsPooled(rows []LargeRow, r LargeRow) (float64, bool) {
	i := slices.IndexFunc(rows, func(p LargeRow) bool {
		return p.Target == PooledHop && p.What == r.What && p.Proto == r.Proto
	})
	if i < 0 {
		return 0, false
	}
	var rs []float64
	for round, pooled := range rows[i].MBps {
		if round < len(r.MBps) && pooled > 0 {
			rs = append(rs, r.MBps[round]/pooled)
		}
	}
	return median(rs), len(rs) > 0
}
