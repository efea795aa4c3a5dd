package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/config/configtest"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// countingConn counts the writes that reach the socket (TLS records go out
// one Write each).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// fixture is a forwarder for a route to upstream, over the proxy's kind of
// transport (an *http.Transport) whose socket writes are counted.
type fixture struct {
	h      *Handler
	writes atomic.Int64
}

func newFixture(t testing.TB, upstream *httptest.Server) *fixture {
	t.Helper()
	rc := configtest.Route(t, upstream.URL, "{}")
	f := &fixture{}
	var d net.Dialer
	tr := netguard.NewTransport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &f.writes}, nil
	}, netguard.TransportOptions{})
	tr.TLSClientConfig.RootCAs = nil
	tr.TLSClientConfig.InsecureSkipVerify = true // the test's own server, on loopback
	t.Cleanup(tr.CloseIdleConnections)
	log := slog.New(slog.DiscardHandler)
	f.h = New(Options{Route: rc, Transport: tr, Tokens: &tokens.Source{}, Responder: &apierror.Responder{Log: log},
		Metrics: metrics.New(), Log: log, Now: time.Now, Streams: &Streams{}})
	return f
}

func (f *fixture) post(t testing.TB, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// TestSmallBodyGoesOutInOneWrite: a small request body of known length
// leaves with its headers in one write, whole, with its length; the
// remote server is spoken to over HTTP/1.1 although it offers HTTP/2.
func TestSmallBodyGoesOutInOneWrite(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != body || r.ContentLength != int64(len(body)) || r.ProtoMajor != 1 {
			http.Error(w, fmt.Sprintf("got %s %d bytes (Content-Length %d): %s", r.Proto, len(b), r.ContentLength, b), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	f := newFixture(t, up)

	if w := f.post(t, body); w.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	// The connection is warm now: what a request costs in writes is what
	// the next one adds.
	before := f.writes.Load()
	if w := f.post(t, body); w.Code != http.StatusOK || w.Body.String() != `{"ok":true}` {
		t.Fatalf("second request: %d %s", w.Code, w.Body)
	}
	if n := f.writes.Load() - before; n != 1 {
		t.Errorf("the request went out in %d writes, want 1", n)
	}
}

// TestChunkedJSONAnswerGetsItsLength: a JSON answer of unknown length is
// relayed whole, with a Content-Length, not flushed chunk by chunk.
func TestChunkedJSONAnswerGetsItsLength(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"part":1,`)
		w.(http.Flusher).Flush() // chunked from here on
		io.WriteString(w, `"part2":2}`)
	}))
	defer up.Close()
	f := newFixture(t, up)
	w := f.post(t, `{}`)
	if w.Code != http.StatusOK || w.Body.String() != `{"part":1,"part2":2}` {
		t.Fatalf("answer: %d %q", w.Code, w.Body)
	}
	if got := w.Header().Get("Content-Length"); got != "20" {
		t.Errorf("Content-Length = %q, want 20", got)
	}
	if w.Flushed {
		t.Error("the JSON answer was flushed on its way")
	}
}

// TestEventsAreFlushedAtOnce: each server-sent event reaches the client
// before the remote server writes the next one. The remote server waits
// for the client to have read the first event; without the flush, neither
// would move, and the guard below ends the test.
func TestEventsAreFlushedAtOnce(t *testing.T) {
	seen := make(chan struct{})
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-seen:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	}))
	defer up.Close()
	f := newFixture(t, up)
	front := httptest.NewServer(f.h)
	defer front.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a deadlock guard, not a measurement
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front.URL+"/mcp", strings.NewReader(`{}`))
	req.Host = "mcp.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(seen)
	rest, err := io.ReadAll(rd)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("the rest: %q %v", rest, err)
	}
}

// TestAuthHeaderFollowsTheToken: the precomputed header is the token's,
// also when a token record changes under the same pointer.
func TestAuthHeaderFollowsTheToken(t *testing.T) {
	var a authHeaders
	t1 := &upstream.Token{AccessToken: "one"}
	t2 := &upstream.Token{AccessToken: "two"}
	for range 3 {
		if got := a.value(t1); got != "Bearer one" {
			t.Fatalf("t1: %q", got)
		}
		if got := a.value(t2); got != "Bearer two" {
			t.Fatalf("t2: %q", got)
		}
	}
	t1.AccessToken = "changed"
	if got := a.value(t1); got != "Bearer changed" {
		t.Fatalf("changed t1: %q", got)
	}
	for i := range maxAuthHeaders + 10 {
		a.value(&upstream.Token{AccessToken: fmt.Sprint(i)})
	}
	if n := a.n.Load(); n > maxAuthHeaders {
		t.Errorf("%d entries, want at most %d", n, maxAuthHeaders)
	}
}

// TestBufferPool: buffers are the copy size; foreign ones are not kept.
func TestBufferPool(t *testing.T) {
	var p bufferPool
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("len %d", len(b))
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // ignored
	if b := p.Get(); len(b) != copyBufferSize {
		t.Fatalf("len %d after Put", len(b))
	}
}

// BenchmarkForward is the forwarder's warm path on a small JSON exchange,
// for its allocations (-benchmem); the CPU that matters is measured by
// make bench, with TLS on both legs and every part in a process of its own.
func BenchmarkForward(b *testing.B) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "11")
		io.WriteString(w, `{"ok":true}`)
	}))
	up.TLS = &tls.Config{}
	up.StartTLS()
	defer up.Close()
	f := newFixture(b, up)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", strings.NewReader(body))
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
