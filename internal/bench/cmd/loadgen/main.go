// Command loadgen is the closed-loop load generator of `make bench`: c
// workers each send one MCP tools/call POST, read and check the whole
// answer, and send the next, over HTTPS (HTTP/1.1, one connection per
// worker, or HTTP/2, one connection for all), for a fixed time after a
// warm-up. It reads the CPU time of the processes it is told about (and
// its own) from /proc at the start and the end of the measured window, and
// prints one JSON line with the counts.
//
// Every answer is checked: status 200, the protocol asked for, and the
// body (the canned answer byte for byte, or the echoed text in the SDK
// server's event stream). One bad answer fails the run.
package main

import (
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type pidList map[string]int

func (p pidList) String() string { return fmt.Sprint(map[string]int(p)) }
func (p pidList) Set(v string) error {
	name, n, ok := strings.Cut(v, "=")
	pid, err := strconv.Atoi(n)
	if !ok || err != nil || pid <= 0 {
		return fmt.Errorf("want NAME=PID, got %q", v)
	}
	p[name] = pid
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "the MCP endpoint `URL` (https)")
	addr := fs.String("addr", "", "connect to this `host:port` whatever the URL's host resolves to")
	caFile := fs.String("ca-file", "", "PEM `file` of the CA that issued the server's certificate")
	bearer := fs.String("bearer", "", "the access `token` sent as Authorization: Bearer")
	conc := fs.Int("c", 1, "concurrent workers (closed loop)")
	proto := fs.String("proto", "h1", "the client leg's `protocol`: h1 (HTTP/1.1) or h2 (HTTP/2)")
	kind := fs.String("upstream", "sdk", "what answers: sdk (the MCP Go SDK echo server) or canned (a fixed JSON answer)")
	warmup := fs.Duration("warmup", 400*time.Millisecond, "load before the measured window")
	dur := fs.Duration("duration", 1500*time.Millisecond, "the measured window")
	maxReq := fs.Int64("max-requests", 5_000_000, "stop a worker's loop after this many requests in all, whatever the time")
	pids := pidList{}
	fs.Var(pids, "pid", "read the CPU time of process `NAME=PID` over the window (repeatable)")
	profURL := fs.String("cpu-profile-url", "", "as the window opens, get this `URL` (a hop's net/http/pprof profile endpoint, ?seconds= the window's length) and write what it answers to -cpu-profile-out")
	profOut := fs.String("cpu-profile-out", "", "the `file` -cpu-profile-url's answer is written to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *addr == "" || *conc < 1 {
		return errors.New("-url, -addr and -c ≥ 1 are required")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", *caFile)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, *addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: *conc,
		MaxConnsPerHost:     *conc,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	wantMajor := 1
	switch *proto {
	case "h1":
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	case "h2":
		tr.ForceAttemptHTTP2 = true
		tr.MaxConnsPerHost = 0 // HTTP/2 multiplexes every worker on one connection
		wantMajor = 2
	default:
		return fmt.Errorf("-proto %q: use h1 or h2", *proto)
	}
	c := &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: *target, bearer: *bearer, major: wantMajor, kind: *kind}
	switch *kind {
	case "sdk", "canned":
	default:
		return fmt.Errorf("-upstream %q: use sdk or canned", *kind)
	}
	if err := c.initialize(); err != nil {
		return fmt.Errorf("initialize through %s: %w", *target, err)
	}

	// The workers run through warm-up and window alike; the window is
	// marked by reading the counters and the CPU times at its edges.
	var (
		done    atomic.Bool
		count   atomic.Int64
		failed  atomic.Int64
		errOnce sync.Once
		firstEr error
		wg      sync.WaitGroup
	)
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; !done.Load() && count.Load() < *maxReq; seq++ {
				body := fmt.Appendf(nil, callBody, w*10_000_000+seq, w)
				if err := c.call(body, w); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstEr = err })
					return
				}
				count.Add(1)
			}
		}()
	}
	time.Sleep(*warmup)
	n0 := count.Load()
	cpu0, err := cpuOf(pids)
	if err != nil {
		return err
	}
	t0 := time.Now()
	profiled := make(chan error, 1)
	if *profURL != "" {
		go func() { profiled <- saveProfile(*profURL, *profOut) }()
	} else {
		profiled <- nil
	}
	time.Sleep(*dur)
	n1 := count.Load()
	cpu1, err := cpuOf(pids)
	elapsed := time.Since(t0)
	// The hop answers the profile when its seconds are up, a moment after
	// the window closes; the load goes on until then, as it did before
	// the window closed.
	perr := <-profiled
	done.Store(true)
	wg.Wait()
	if err := errors.Join(err, perr); err != nil {
		return err
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d bad answers; the first: %w", failed.Load(), firstEr)
	}
	res := bench.LoadResult{Requests: n1 - n0, Seconds: elapsed.Seconds(), CPU: map[string]float64{}}
	for name := range cpu1 {
		res.CPU[name] = (cpu1[name] - cpu0[name]).Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// saveProfile gets url and writes its answer to file.
func saveProfile(url, file string) error {
	if file == "" {
		return errors.New("-cpu-profile-url wants -cpu-profile-out")
	}
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("the hop's CPU profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("the hop's CPU profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the hop's CPU profile: status %d: %.200s", resp.StatusCode, b)
	}
	return os.WriteFile(file, b, 0o644)
}

// cpuOf reads the CPU time of every process in pids and of this one
// (named "loadgen").
func cpuOf(pids pidList) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	self, err := bench.ProcessCPU(0)
	if err != nil {
		return nil, err
	}
	out["loadgen"] = self
	for name, pid := range pids {
		d, err := bench.GroupCPU(pid) // a hop's process and any workers of its own (nginx)
		if err != nil {
			return nil, fmt.Errorf("the CPU time of %s (pid %d): %w", name, pid, err)
		}
		out[name] = d
	}
	return out, nil
}

const (
	protocolVersion = "2025-11-25"
	initBody        = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + protocolVersion + `","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}}`
	initializedBody = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	// callBody is a tools/call of the echo tool: an id of its own (an MCP
	// session refuses two requests in flight with one id), and the worker
	// in the text, so that the check below proves each answer is the one
	// asked for.
	callBody = `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"bench-%d"}}}`
)

type client struct {
	hc      *http.Client
	url     string
	bearer  string
	major   int
	kind    string
	session string
}

func (c *client) post(body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.bearer)
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.ProtoMajor != c.major {
		return nil, nil, fmt.Errorf("the answer came over %s, not HTTP/%d", resp.Proto, c.major)
	}
	return resp, b, nil
}

// initialize opens the MCP session the workers share (the canned server
// has none: it answers everything with the same bytes).
func (c *client) initialize() error {
	if c.kind == "canned" {
		return nil
	}
	resp, b, err := c.post([]byte(initBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"protocolVersion"`)) {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	resp, b, err = c.post([]byte(initializedBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: status %d: %.300s", resp.StatusCode, b)
	}
	return nil
}

func (c *client) call(body []byte, worker int) error {
	resp, b, err := c.post(body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	if c.kind == "canned" {
		if !bytes.Equal(b, bench.CannedAnswer) {
			return fmt.Errorf("not the canned answer: %.300s", b)
		}
		return nil
	}
	want := `"text":"bench-` + strconv.Itoa(worker) + `"`
	if !bytes.Contains(b, []byte(want)) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return fmt.Errorf("the echo of worker %d is missing (%s): %.300s", worker, resp.Header.Get("Content-Type"), b)
	}
	return nil
}
