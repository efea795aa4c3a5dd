package bench

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer is a loopback TCP load balancer, as a layer-4 balancer in front
// of proxy replicas is: it hands each new connection to the next backend in
// turn, skipping a backend that refuses it (a passive health check), and
// copies bytes both ways, so TLS passes through to the replicas. A
// connection stays with its backend until either side closes it.
type Balancer struct {
	ln       net.Listener
	backends []string

	next  atomic.Uint64
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// per counts the connections handed to each backend.
	per []atomic.Int64
	wg  sync.WaitGroup
}

// backendDialTimeout bounds the dial of one backend: on loopback, a live
// one answers at once.
const backendDialTimeout = time.Second

// StartBalancer listens on a free 127.0.0.1 port and balances over
// backends (host:port).
func StartBalancer(backends []string) (*Balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Balancer{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}, per: make([]atomic.Int64, len(backends))}
	b.wg.Go(b.serve)
	return b, nil
}

// Addr is where the balancer listens.
func (b *Balancer) Addr() string { return b.ln.Addr().String() }

// Connections reports how many connections each backend was handed, in
// the order of the backends.
func (b *Balancer) Connections() []int64 {
	out := make([]int64, len(b.per))
	for i := range b.per {
		out[i] = b.per[i].Load()
	}
	return out
}

func (b *Balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.handle(c) })
	}
}

func (b *Balancer) handle(c net.Conn) {
	start := int(b.next.Add(1) - 1)
	var up net.Conn
	for i := range b.backends {
		n := (start + i) % len(b.backends)
		d, err := net.DialTimeout("tcp", b.backends[n], backendDialTimeout)
		if err == nil {
			up = d
			b.per[n].Add(1)
			break
		}
	}
	if up == nil || !b.track(c, up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close is not worth keeping: either side ending ends both.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	b.untrack(c, up)
}

// track records a live pair; false once the balancer is closed.
func (b *Balancer) track(cs ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *Balancer) untrack(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		delete(b.conns, c)
	}
}

// Close stops listening, closes every connection and waits until every
// goroutine of the balancer has returned.
func (b *Balancer) Close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.wg.Wait()
}
