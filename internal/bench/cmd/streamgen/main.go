// Command streamgen is the client side of the streams benchmark of `make
// bench` (docs/performance.md): it opens -n MCP sessions, each with its
// idle GET event stream, through one hop (over HTTP/1.1, a connection per
// session as MCP clients hold them, or HTTP/2, streams multiplexed on as
// few connections as the server allows), and prints a JSON line
// (bench.StreamsOpened). Then, on a line from standard input, it asks the
// upstream (benchupstream -mode streams) to send one event to every open
// stream, -rate a second, waits for them, and prints a second JSON line
// (bench.StreamsEvents): how many arrived, how many streams are still
// open, and the delivery latency of the events (upstream write to client
// read).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "streamgen:", err)
		os.Exit(1)
	}
}

type options struct {
	url, addr, bearer, proto string
	notifyURL, notifyAddr    string
	refURL, refAddr          string
	n, refN, openC, rate     int
	timeout                  time.Duration
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("streamgen", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "the MCP endpoint `URL` (https)")
	fs.StringVar(&o.addr, "addr", "", "connect to this `host:port` whatever the URL's host resolves to")
	caFile := fs.String("ca-file", "", "PEM `file` of the CA of every certificate")
	fs.StringVar(&o.bearer, "bearer", "", "the access `token` sent as Authorization: Bearer")
	fs.StringVar(&o.proto, "proto", "h1", "the client leg's `protocol`: h1 or h2")
	fs.IntVar(&o.n, "n", 100, "sessions, each with an event stream")
	fs.IntVar(&o.openC, "open-c", 32, "sessions opened at once")
	fs.StringVar(&o.notifyURL, "notify-url", "", "the upstream's notify `URL` (https)")
	fs.StringVar(&o.notifyAddr, "notify-addr", "", "connect there for -notify-url")
	fs.IntVar(&o.rate, "rate", 2000, "events a second")
	fs.StringVar(&o.refURL, "ref-url", "", "the upstream's own MCP endpoint `URL`, for the reference streams")
	fs.StringVar(&o.refAddr, "ref-addr", "", "connect there for -ref-url")
	fs.IntVar(&o.refN, "ref-n", 0, "reference streams straight to the upstream, open alongside, whose events are sent among the others': the latency without the hop, measured in the same window")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound of each step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.url == "" || o.addr == "" || o.notifyURL == "" || o.n < 1 || o.openC < 1 || o.rate < 1 {
		return errors.New("-url, -addr, -notify-url, -n, -open-c and -rate are required")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", *caFile)
	}
	g, err := newGen(o, roots)
	if err != nil {
		return err
	}
	var ref *gen
	if o.refN > 0 {
		ro := o
		ro.url, ro.addr, ro.n = o.refURL, o.refAddr, o.refN
		if ref, err = newGen(ro, roots); err != nil {
			return err
		}
		if op := ref.open(); op.Failed > 0 {
			return fmt.Errorf("the reference streams: %d failed: %s", op.Failed, op.FirstError)
		}
	}
	opened := g.open()
	if err := json.NewEncoder(os.Stdout).Encode(opened); err != nil {
		return err
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the go: %w", err)
	}
	ev, err := g.events(roots, ref)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(ev)
}

type gen struct {
	o     options
	hc    *http.Client
	major int
	live  atomic.Int64
	// lat holds each event's delivery latency, in microseconds, in the
	// order they came; all is closed when want have come.
	mu   sync.Mutex
	lat  []int64
	want int64
	all  chan struct{}
}

func newGen(o options, roots *x509.CertPool) (*gen, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, o.addr)
		},
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost:   o.openC,
		ResponseHeaderTimeout: o.timeout,
		TLSHandshakeTimeout:   o.timeout,
		DisableCompression:    true,
		WriteBufferSize:       1 << 10,
		ReadBufferSize:        1 << 10,
	}
	g := &gen{o: o, major: 1, all: make(chan struct{})}
	switch o.proto {
	case "h1":
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	case "h2":
		tr.ForceAttemptHTTP2 = true
		g.major = 2
	default:
		return nil, fmt.Errorf("-proto %q: use h1 or h2", o.proto)
	}
	g.hc = &http.Client{Transport: tr}
	return g, nil
}

// open opens every session and its stream, openC at a time.
func (g *gen) open() bench.StreamsOpened {
	start := time.Now()
	var (
		next, failed atomic.Int64
		errOnce      sync.Once
		firstErr     string
		wg           sync.WaitGroup
	)
	for range g.o.openC {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(g.o.n) {
				if err := g.openOne(); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
				}
			}
		}()
	}
	wg.Wait()
	return bench.StreamsOpened{Opened: g.live.Load(), Failed: failed.Load(), Seconds: time.Since(start).Seconds(), FirstError: firstErr}
}

const initBody = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"streamgen","version":"1"}}}`

func (g *gen) request(method string, body io.Reader, session string) (*http.Response, error) {
	req, err := http.NewRequest(method, g.o.url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+g.o.bearer)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	} else {
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != g.major {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s over %s: %s", method, resp.Status, resp.Proto, b)
	}
	return resp, nil
}

// openOne opens a session (initialize) and its GET stream, and reads the
// stream in a goroutine of its own.
func (g *gen) openOne() error {
	resp, err := g.request(http.MethodPost, strings.NewReader(initBody), "")
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	session := resp.Header.Get("Mcp-Session-Id")
	if err != nil || session == "" || !bytes.Contains(b, []byte(`"protocolVersion"`)) {
		return fmt.Errorf("initialize: session %q, %v: %.300s", session, err, b)
	}
	resp, err = g.request(http.MethodGet, nil, session)
	if err != nil {
		return err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return fmt.Errorf("GET: Content-Type %q", ct)
	}
	g.live.Add(1)
	go g.read(resp.Body)
	return nil
}

// read reads one stream's events until it ends, recording each one's
// latency.
func (g *gen) read(body io.ReadCloser) {
	defer g.live.Add(-1)
	defer body.Close()
	br := bufio.NewReaderSize(body, 256)
	const prefix = `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"`
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		rest, ok := bytes.CutPrefix(line, []byte(prefix))
		if !ok {
			continue
		}
		stamp, _, _ := bytes.Cut(rest, []byte(`"`))
		sent, err := strconv.ParseInt(string(stamp), 10, 64)
		if err != nil {
			continue
		}
		g.record((time.Now().UnixNano() - sent) / 1e3)
	}
}

func (g *gen) record(us int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lat = append(g.lat, us)
	if int64(len(g.lat)) == g.want {
		close(g.all)
	}
}

// expect sets how many events g waits for: one per open stream.
func (g *gen) expect() int64 {
	want := g.live.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = want
	if int64(len(g.lat)) >= want {
		close(g.all)
	}
	return want
}

// latencies are the latencies recorded so far.
func (g *gen) latencies() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.lat)
}

// events asks the upstream for one event on every open stream (g's and
// ref's) and waits for them.
func (g *gen) events(roots *x509.CertPool, ref *gen) (bench.StreamsEvents, error) {
	var d net.Dialer
	hc := &http.Client{Timeout: g.o.timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, g.o.notifyAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	want := g.expect()
	if ref != nil {
		ref.expect()
	}
	start := time.Now()
	resp, err := hc.Post(g.o.notifyURL+"?rate="+strconv.Itoa(g.o.rate), "text/plain", nil)
	if err != nil {
		return bench.StreamsEvents{}, fmt.Errorf("notify: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sent, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		return bench.StreamsEvents{}, fmt.Errorf("notify: %s: %s", resp.Status, b)
	}
	deadline := time.After(10 * time.Second)
	for _, x := range []*gen{g, ref} {
		if x == nil {
			continue
		}
		select {
		case <-x.all:
		case <-deadline:
		}
	}
	lat := g.latencies()
	ev := bench.StreamsEvents{Streams: want, Sent: sent, Received: int64(len(lat)), Open: g.live.Load(), Seconds: time.Since(start).Seconds()}
	ev.P50, ev.P99, ev.Max = bench.Percentiles(lat)
	if ref != nil {
		rl := ref.latencies()
		ev.RefReceived = int64(len(rl))
		ev.RefP50, ev.RefP99, _ = bench.Percentiles(rl)
	}
	return ev, nil
}
