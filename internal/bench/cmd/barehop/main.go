// Command barehop is the baseline of `make bench` (docs/performance.md): a
// bare httputil.ReverseProxy over TLS that only sends each request on to
// the upstream its Host names, with a fixed bearer token in place of the
// client's. It has the defaults of the standard library (no buffer pool, no
// flush interval) and the proxy's outbound transport settings; -pool gives
// it a pool of 32 KiB copy buffers (the pooled hop), and -upstream-h1 makes
// it forward over HTTP/1.1 only, as mcp-proxy forwards requests (otherwise
// it speaks HTTP/2 to an upstream that offers it). -debug-listen serves
// net/http/pprof and expvar on a loopback address, so that the bench can
// count its goroutines and read its heap and stacks.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "expvar" // for -debug-listen: memstats at /debug/vars
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof" // for -debug-listen
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:9443", "`address` to listen on")
	certFile := flag.String("tls-cert", "", "TLS certificate `file` (PEM)")
	keyFile := flag.String("tls-key", "", "TLS key `file` (PEM)")
	caFile := flag.String("ca-file", "", "PEM `file` of the CA the upstreams' certificates come from")
	bearerFile := flag.String("bearer-file", "", "`file` holding the bearer token to inject")
	pool := flag.Bool("pool", false, "copy answers through pooled 32 KiB buffers")
	upstreamH1 := flag.Bool("upstream-h1", false, "forward over HTTP/1.1 only, as mcp-proxy forwards requests")
	debug := flag.String("debug-listen", "", "`address` (loopback) to serve net/http/pprof on")
	var routes, resolve list
	flag.Var(&routes, "route", "`HOST=URL`: requests for HOST go to URL (repeatable)")
	flag.Var(&resolve, "resolve", "`host:port=addr:port`: connect there for host:port (repeatable)")
	flag.Parse()
	fail := func(err error) { fmt.Fprintln(os.Stderr, "barehop:", err); os.Exit(1) }

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tok, err := os.ReadFile(*bearerFile)
	if err != nil {
		fail(err)
	}
	auth := "Bearer " + strings.TrimSpace(string(tok))
	targets := map[string]*url.URL{}
	for _, r := range routes {
		host, to, _ := strings.Cut(r, "=")
		u, err := url.Parse(to)
		if err != nil {
			fail(err)
		}
		targets[host] = u
	}
	addrs := map[string]string{}
	for _, r := range resolve {
		from, to, _ := strings.Cut(r, "=")
		addrs[from] = to
	}
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if a, ok := addrs[addr]; ok {
			return d.DialContext(ctx, network, a)
		}
		return nil, fmt.Errorf("barehop: %s is not a bench upstream", addr)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[pr.In.Host])
			pr.Out.Host = ""
			pr.Out.Header.Set("Authorization", auth)
		},
		Transport: upstreamTransport(dial, roots, *upstreamH1),
		ErrorLog:  log.New(os.Stderr, "barehop: ", 0),
	}
	if *pool {
		rp.BufferPool = &bufferPool{}
	}
	if *debug != "" {
		go func() { fail(http.ListenAndServe(*debug, nil)) }() // net/http/pprof's handlers
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if targets[r.Host] == nil {
			http.Error(w, "no route for "+r.Host, http.StatusNotFound)
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	// Under make bench -profile, the hop is profiled too, until it is
	// interrupted, for a side-by-side look at what the hop alone costs;
	// under -cpu-windows the bench takes a profile of each measured window
	// from -debug-listen instead (Go runs one CPU profile at a time).
	if dir := os.Getenv("BENCH_PROFILE_DIR"); dir != "" && os.Getenv("BENCH_CPU_WINDOWS") == "" {
		name := "barehop-cpu.pprof"
		switch {
		case *pool && *upstreamH1:
			name = "pooledh1hop-cpu.pprof"
		case *pool:
			name = "pooledhop-cpu.pprof"
		case *upstreamH1:
			name = "bareh1hop-cpu.pprof"
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, os.Interrupt)
			<-ch
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	if err := srv.ListenAndServeTLS(*certFile, *keyFile); err != nil {
		fail(err)
	}
}

// upstreamTransport is the proxy's outbound transport (netguard's), which
// speaks HTTP/2 to an upstream that offers it; with h1Only, HTTP/1.1 only,
// set exactly as proxy/forward's forwardingTransport sets it for the
// requests mcp-proxy forwards, so that the two hops can be compared on the
// same upstream protocol (docs/performance.md: Go's HTTP/2 client starts a
// goroutine for each request, its HTTP/1.1 client does not).
func upstreamTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), roots *x509.CertPool, h1Only bool) *http.Transport {
	t := netguard.NewTransport(dial, netguard.TransportOptions{RootCAs: roots})
	if h1Only {
		var p http.Protocols
		p.SetHTTP1(true)
		t.Protocols = &p
		t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return t
}

// bufferPool lends the ReverseProxy 32 KiB copy buffers, the size it
// allocates for each answer without a pool.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return new([32 << 10]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf[:32<<10]))
	}
}
