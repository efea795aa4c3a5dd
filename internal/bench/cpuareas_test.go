package bench

import (
	"strings"
	"testing"
	"time"
)

// A CPU profile as `go tool pprof -traces` prints it, one sample of each
// area (frames shortened), and one whose value is not a duration.
const traces = `File: profproxy
Type: cpu
Duration: 2s, Total samples = 120ms (6.00%)
-----------+-------------------------------------------------------
      10ms   runtime.memmove
             runtime.copystack
             runtime.newstack
             github.com/mcp-proxy/mcp-proxy/proxy/store.(*HotCache).get
             net/http.(*http2serverConn).runHandler
-----------+-------------------------------------------------------
      20ms   runtime.scanobject
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
      10ms   io.ReadAll
             github.com/mcp-proxy/mcp-proxy/proxy/forward.readSmallBody
             net/http.serverHandler.ServeHTTP
-----------+-------------------------------------------------------
      10ms   runtime.mallocgc
             github.com/mcp-proxy/mcp-proxy/proxy/store.Records[go.shape.struct { Key string }].Cached
             github.com/mcp-proxy/mcp-proxy/proxy.(*route).ServeHTTP
             net/http.serverHandler.ServeHTTP
-----------+-------------------------------------------------------
      10ms   crypto/tls.(*Conn).Write
             net/http.(*persistConn).roundTrip
             net/http.(*Transport).roundTrip
             net/http/httputil.(*ReverseProxy).ServeHTTP
             github.com/mcp-proxy/mcp-proxy/proxy.(*route).ServeHTTP
             net/http.(*http2serverConn).runHandler
-----------+-------------------------------------------------------
      10ms   net/http.(*http2responseWriter).Flush (inline)
             net/http/httputil.(*ReverseProxy).ServeHTTP
             main.main.func5
             net/http.(*http2serverConn).runHandler
-----------+-------------------------------------------------------
      10ms   syscall.Syscall
             net/http.(*persistConn).writeLoop
-----------+-------------------------------------------------------
      20ms   crypto/tls.(*Conn).Write
             net/http.(*http2serverConn).writeFrameAsync
-----------+-------------------------------------------------------
      10ms   runtime.futex
             runtime.findRunnable
             runtime.schedule
             runtime.mcall
-----------+-------------------------------------------------------
      10ms   runtime.sigtramp
-----------+-------------------------------------------------------
`

func TestParseTraces(t *testing.T) {
	got, dur, err := ParseTraces(strings.NewReader(traces))
	if err != nil {
		t.Fatal(err)
	}
	if dur != 2*time.Second {
		t.Errorf("duration %v, want 2s", dur)
	}
	ms := time.Millisecond
	want := map[string]time.Duration{
		"stack growth (runtime.newstack)":                                                       10 * ms,
		"GC: background workers (mark, sweep, scavenge)":                                        20 * ms,
		"handler: reading the request body":                                                     10 * ms,
		"handler: the hop's own code (mcp-proxy: its middleware)":                               10 * ms,
		"upstream leg: the round trip and its connection's goroutines":                          20 * ms,
		"handler: ReverseProxy, the answer written to the client":                               10 * ms,
		"client leg: the connection (TLS, reading requests, writing answers and HTTP/2 frames)": 20 * ms,
		"scheduler": 10 * ms,
		"other":     10 * ms,
	}
	for a, w := range want {
		if got[a] != w {
			t.Errorf("%s: got %v, want %v", a, got[a], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got areas %v, want %v", got, want)
	}
}

func TestParseTracesRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"no duration": "-----------+---\n      10ms   runtime.mcall\n",
		"bad value":   "Duration: 2s, Total\n-----------+---\n      ten   runtime.mcall\n",
	} {
		if _, _, err := ParseTraces(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWindowProfile(t *testing.T) {
	h := &Harness{ProfileDir: "/p", CPUWindows: true, debugAddrs: map[string]string{ProxyHost: "127.0.0.1:1"}}
	o := Options{CPUWindows: true, Duration: 2 * time.Second}
	got := h.windowProfile(o, Cell{"canned", "h2", 16}, Proxy, 0)
	want := WindowProfile{URL: "http://127.0.0.1:1/debug/pprof/profile?seconds=2", File: "/p/cpu-canned-h2-c16-mcp-proxy-r1.pprof"}
	if got == nil || *got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// A target's name in a file name: no spaces, commas or slashes.
	h.debugAddrs[PooledH1Host] = "127.0.0.1:2"
	got = h.windowProfile(o, Cell{"canned", "h1", 16}, PooledH1Hop, 2)
	want = WindowProfile{URL: "http://127.0.0.1:2/debug/pprof/profile?seconds=2", File: "/p/cpu-canned-h1-c16-pooledhopHTTP1.1upstream-r3.pprof"}
	if got == nil || *got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := h.windowProfile(o, Cell{"canned", "h2", 16}, PooledHop, 0); got != nil {
		t.Errorf("a hop without a debug listener: got %+v, want none", got)
	}
	o.CPUWindows = false
	if got := h.windowProfile(o, Cell{"canned", "h2", 16}, Proxy, 0); got != nil {
		t.Errorf("without -cpu-windows: got %+v, want none", got)
	}
}
