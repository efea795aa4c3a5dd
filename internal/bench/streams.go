package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StreamsOpened is streamgen's first line: the sessions whose event
// stream it holds open, those that failed (and the first error), and how
// long opening took.
type StreamsOpened struct {
	Opened     int64   `json:"opened"`
	Failed     int64   `json:"failed"`
	Seconds    float64 `json:"seconds"`
	FirstError string  `json:"first_error,omitempty"`
}

// StreamsEvents is streamgen's second line: one event asked for on each of
// Streams open streams, Sent by the upstream, Received by the client, Open
// the streams still open after them; the delivery latency's percentiles,
// in microseconds.
type StreamsEvents struct {
	Streams  int64   `json:"streams"`
	Sent     int64   `json:"sent"`
	Received int64   `json:"received"`
	Open     int64   `json:"open"`
	Seconds  float64 `json:"seconds"`
	P50      int64   `json:"p50_us"`
	P99      int64   `json:"p99_us"`
	Max      int64   `json:"max_us"`
	// The reference streams' events (straight to the upstream, sent
	// among the others): what the latency is without the hop, measured
	// in the same window.
	RefReceived int64 `json:"ref_received"`
	RefP50      int64 `json:"ref_p50_us"`
	RefP99      int64 `json:"ref_p99_us"`
}

// AddedP50 and AddedP99 are what the hop adds to an event's latency: its
// streams' percentile minus the reference streams' in the same window.
func (e StreamsEvents) AddedP50() int64 { return e.P50 - e.RefP50 }
func (e StreamsEvents) AddedP99() int64 { return e.P99 - e.RefP99 }

// Percentiles are the 50th and 99th percentiles and the largest of xs
// (nearest rank).
func Percentiles(xs []int64) (p50, p99, largest int64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p int) int64 { return s[max(0, (len(s)*p+99)/100-1)] }
	return rank(50), rank(99), s[len(s)-1]
}

// PooledHop is the bare hop with a pool of copy buffers, as mcp-proxy
// has: the like-for-like baseline of the budget.
const PooledHop = "pooled hop"

// StreamsTargets are the hops the streams benchmark measures, in order.
// (Direct is in every measurement: the reference streams.)
var StreamsTargets = []string{BareHop, PooledHop, Proxy}

// StreamsOptions choose what the streams benchmark measures.
type StreamsOptions struct {
	// H1 and H2 are the streams opened over each client leg (0: not
	// measured).
	H1, H2 int
	// Rate is the events a second the upstream sends, one per stream.
	Rate     int
	Progress io.Writer
}

// StreamsRow is one hop's measurement over one client leg.
type StreamsRow struct {
	Proto, Target string
	N             int
	Opened        StreamsOpened
	// RSS (bytes) and goroutines (-1: unknown) of the hop's process
	// before the streams were opened and once they all were.
	RSSBefore, RSSAfter     int64
	GoroutinesBefore, After int
	// Heap in use and goroutine stacks (bytes) of a Go hop, before and
	// after: where the resident memory went.
	Before, AfterMem GoMem
	Events           StreamsEvents
}

// GoMem is what a Go process's runtime says it holds, in bytes (-1:
// unknown).
type GoMem struct{ HeapInuse, StackInuse int64 }

// perStream is the growth from a to b per open stream, in KiB (-1:
// unknown).
func (r StreamsRow) perStream(a, b int64) float64 {
	if a < 0 || b < 0 || r.Opened.Opened == 0 {
		return -1
	}
	return float64(b-a) / float64(r.Opened.Opened) / 1024
}

// HeapPerStream and StackPerStream split PerStream: the heap in use and
// the goroutine stacks each stream added (-1: unknown).
func (r StreamsRow) HeapPerStream() float64 {
	return r.perStream(r.Before.HeapInuse, r.AfterMem.HeapInuse)
}

func (r StreamsRow) StackPerStream() float64 {
	return r.perStream(r.Before.StackInuse, r.AfterMem.StackInuse)
}

// PerStream is the hop's resident memory growth per open stream, in KiB.
func (r StreamsRow) PerStream() float64 {
	if r.Opened.Opened == 0 {
		return 0
	}
	return float64(r.RSSAfter-r.RSSBefore) / float64(r.Opened.Opened) / 1024
}

// GoroutinesPerStream is the hop's goroutine growth per open stream (-1:
// unknown).
func (r StreamsRow) GoroutinesPerStream() float64 {
	if r.GoroutinesBefore < 0 || r.After < 0 || r.Opened.Opened == 0 {
		return -1
	}
	return float64(r.After-r.GoroutinesBefore) / float64(r.Opened.Opened)
}

func (h *Harness) streamsHost(target string) string { return routeHosts[target][2] }

// hopKey is the key of the process serving target ("" for direct).
func hopKey(target string) string {
	if target == Direct {
		return ""
	}
	return routeHosts[target][0]
}

// RunStreams measures every target over each client leg, each in a fresh
// process of its own.
func (h *Harness) RunStreams(ctx context.Context, o StreamsOptions) ([]StreamsRow, error) {
	var rows []StreamsRow
	for _, leg := range []struct {
		proto string
		n     int
	}{{"h1", o.H1}, {"h2", o.H2}} {
		if leg.n == 0 {
			continue
		}
		for _, target := range append(slices.Clone(StreamsTargets), h.Peers...) {
			row, err := h.measureStreams(ctx, target, leg.proto, leg.n, o.Rate)
			if err != nil {
				return nil, fmt.Errorf("streams %s %s: %w", target, leg.proto, err)
			}
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "bench: streams %s %-10s %d opened in %.1fs, %.1f KiB and %.2f goroutines each; %d/%d events, p50 %.2f ms, p99 %.2f ms (direct %.2f, %.2f); %d still open\n",
					leg.proto, target, row.Opened.Opened, row.Opened.Seconds, row.PerStream(), row.GoroutinesPerStream(),
					row.Events.Received, row.Events.Streams, ms(row.Events.P50), ms(row.Events.P99), ms(row.Events.RefP50), ms(row.Events.RefP99), row.Events.Open)
			}
			if o.Progress != nil && row.Opened.Failed > 0 {
				fmt.Fprintf(o.Progress, "bench: streams %s %s: %d failed to open; the first: %s\n", leg.proto, target, row.Opened.Failed, row.Opened.FirstError)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// measureStreams starts target afresh (so that the memory it freed
// before does not hide what the streams take), warms it with a few
// streams, then opens n and sends one event on each.
func (h *Harness) measureStreams(ctx context.Context, target, proto string, n, rate int) (StreamsRow, error) {
	row := StreamsRow{Proto: proto, Target: target, N: n}
	key := hopKey(target)
	if key != "" {
		if err := h.Restart(key, 5*time.Second); err != nil {
			return row, err
		}
		if target == Proxy {
			// A new process with the memory store: authorize every route
			// again, for this part and the ones after it.
			if err := h.authorizeAll(ctx); err != nil {
				return row, err
			}
		}
	}
	if _, _, err := h.streamgen(ctx, target, proto, 20, rate, nil); err != nil {
		return row, fmt.Errorf("warming up: %w", err)
	}
	var err error
	traced := make(chan struct{})
	close(traced)
	name := fmt.Sprintf("streams-%s-%s", proto, strings.ReplaceAll(target, " ", ""))
	peak := func() error {
		if row.RSSAfter, err = h.rss(key); err != nil {
			return err
		}
		row.After = h.goroutines(key)
		row.AfterMem = h.goMem(key)
		if h.ProfileDir != "" && key != "" {
			h.saveProfiles(key, name)
			// The events are asked for as soon as this returns: trace
			// the hop while they pass, and a second after.
			traced = h.saveTrace(key, name, time.Duration(n/max(rate, 1))*time.Second+2*time.Second)
		}
		return nil
	}
	if row.RSSBefore, err = h.rss(key); err != nil {
		return row, err
	}
	row.GoroutinesBefore = h.goroutines(key)
	row.Before = h.goMem(key)
	row.Opened, row.Events, err = h.streamgen(ctx, target, proto, n, rate, peak)
	<-traced
	return row, err
}

// saveTrace writes an execution trace (runtime/trace, through the
// hop's net/http/pprof listener) of key's process for d to the profile
// directory; the channel is closed when it is written. The trace
// handler answers nothing until the trace has grown, so its start is
// waited for by a short sleep: what comes after saveTrace returns is in
// the trace.
func (h *Harness) saveTrace(key, name string, d time.Duration) chan struct{} {
	done := make(chan struct{})
	addr := h.debugAddrs[key]
	if addr == "" {
		close(done)
		return done
	}
	f, err := os.Create(filepath.Join(h.ProfileDir, name+"-trace.out"))
	if err != nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		defer f.Close()
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%g", addr, d.Seconds()))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		io.Copy(f, resp.Body)
	}()
	time.Sleep(200 * time.Millisecond)
	return done
}

// streamgen runs one streamgen process through target: it opens n
// streams, then (after atPeak, with every stream open and settled) asks
// for one event on each.
func (h *Harness) streamgen(ctx context.Context, target, proto string, n, rate int, atPeak func() error) (op StreamsOpened, ev StreamsEvents, err error) {
	host := h.streamsHost(target)
	token := h.DirectToken
	if target == Proxy {
		token = h.ProxyTokens[host]
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.Bin, "streamgen"), "-url", "https://"+host+"/mcp", "-addr", h.addrs[host],
		"-ca-file", h.path("ca.pem"), "-bearer", token, "-proto", proto, "-n", strconv.Itoa(n), "-rate", strconv.Itoa(rate),
		"-notify-url", "https://"+StreamsHost+"/bench/notify", "-notify-addr", h.addrs[StreamsHost],
		"-ref-url", "https://"+StreamsHost+"/mcp", "-ref-addr", h.addrs[StreamsHost], "-ref-n", strconv.Itoa(refStreams(n)))
	ownProcess(cmd)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return op, ev, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return op, ev, err
	}
	if err := cmd.Start(); err != nil {
		return op, ev, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	dec := json.NewDecoder(bufio.NewReader(stdout))
	fail := func(err error) (StreamsOpened, StreamsEvents, error) {
		killProcess(cmd)
		return op, ev, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := dec.Decode(&op); err != nil {
		return fail(err)
	}
	if atPeak != nil {
		time.Sleep(2 * time.Second) // let the hop settle
		if err := atPeak(); err != nil {
			return fail(err)
		}
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return fail(err)
	}
	if err := dec.Decode(&ev); err != nil {
		return fail(err)
	}
	return op, ev, nil
}

// refStreams is how many reference streams go straight to the upstream
// beside n through a hop: a tenth, at least 20.
func refStreams(n int) int { return max(20, n/10) }

// rss is the resident memory of key's process group (nginx: its master
// and workers), in bytes; 0 for direct.
func (h *Harness) rss(key string) (int64, error) {
	if key == "" {
		return 0, nil
	}
	return groupRSS(h.PID(key))
}

// goroutines counts the goroutines of key's process: mcp-proxy's from its
// metrics, a Go hop's from its pprof listener; -1 when unknown.
func (h *Harness) goroutines(key string) int {
	if key == ProxyHost {
		m, err := h.AdminMetrics()
		if err != nil || m["go_goroutines"] == nil || len(m["go_goroutines"].Metric) == 0 {
			return -1
		}
		return int(m["go_goroutines"].Metric[0].GetGauge().GetValue())
	}
	addr := h.debugAddrs[key]
	if addr == "" {
		return -1
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		return -1
	}
	return n
}

// saveProfiles writes key's heap and goroutine profiles to the profile
// directory, named after what is open.
func (h *Harness) saveProfiles(key, name string) {
	addr := h.debugAddrs[key]
	if addr == "" {
		return
	}
	// First the heap as text, which ends with the runtime's MemStats as
	// they are (heap idle and released, stacks, metadata: the rest of the
	// resident memory); then the heap profile, which is of the last
	// collection, and that may have run before the last streams opened:
	// collect first (gc=1), now that memory has been read. The goroutines
	// also as text (debug=2), each with its frames and their arguments.
	for _, p := range []string{"heap?debug=1", "heap?gc=1", "goroutine", "goroutine?debug=2"} {
		resp, err := http.Get("http://" + addr + "/debug/pprof/" + p)
		if err != nil {
			continue
		}
		kind, _, _ := strings.Cut(p, "?")
		file := name + "-" + kind + ".pprof"
		if strings.Contains(p, "debug=") {
			file = name + "-" + kind + ".txt"
		}
		if f, err := os.Create(filepath.Join(h.ProfileDir, file)); err == nil {
			io.Copy(f, resp.Body)
			f.Close()
		}
		resp.Body.Close()
	}
}

// goMem reads a Go hop's heap in use and stacks: mcp-proxy's from its
// metrics, a Go hop's from expvar's memstats on its debug listener.
func (h *Harness) goMem(key string) GoMem {
	unknown := GoMem{-1, -1}
	if key == ProxyHost {
		m, err := h.AdminMetrics()
		if err != nil || m["go_memstats_heap_inuse_bytes"] == nil || m["go_memstats_stack_inuse_bytes"] == nil {
			return unknown
		}
		return GoMem{int64(m["go_memstats_heap_inuse_bytes"].Metric[0].GetGauge().GetValue()),
			int64(m["go_memstats_stack_inuse_bytes"].Metric[0].GetGauge().GetValue())}
	}
	addr := h.debugAddrs[key]
	if addr == "" {
		return unknown
	}
	resp, err := http.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return unknown
	}
	defer resp.Body.Close()
	var v struct {
		Memstats struct{ HeapInuse, StackInuse int64 } `json:"memstats"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return unknown
	}
	return GoMem{v.Memstats.HeapInuse, v.Memstats.StackInuse}
}
