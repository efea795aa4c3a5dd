package forward

import (
	"net/http"
	"sync"
)

// What an idle event stream holds (docs/performance.md, "Idle event
// streams"): an MCP client keeps a GET open per session, for hours, mostly
// idle. httputil.ReverseProxy holds its copy buffer for as long as it waits
// for the remote server's next bytes, so a stream's buffer is small; and
// the stream's upstream leg goes over HTTP/2 where the remote server
// speaks it, so that thousands of streams share a few connections instead
// of holding one each (with its TLS state, buffers and two goroutines).

// eventBufferSize is the size of the buffers event streams are copied
// through: an MCP notification fits, a larger event takes a few copies.
const eventBufferSize = 2 << 10

// eventBuffers lend the ReverseProxy of GET streams their copy buffers.
var eventBuffers = &smallPool{}

type smallPool struct{ p sync.Pool }

func (b *smallPool) Get() []byte {
	if v, ok := b.p.Get().(*[eventBufferSize]byte); ok {
		return v[:]
	}
	return new([eventBufferSize]byte)[:]
}

func (b *smallPool) Put(buf []byte) {
	if cap(buf) >= eventBufferSize {
		b.p.Put((*[eventBufferSize]byte)(buf[:eventBufferSize]))
	}
}

// streamBufferSize is the size of the read and write buffers of an
// HTTP/1.1 connection that carries one event stream (a remote server
// without HTTP/2): a GET's headers fit, and events are read as they come.
const streamBufferSize = 1 << 10

// streamTransport is the route's transport for event streams. When base
// is an *http.Transport (the proxy's guarded one), it is a clone that
// offers HTTP/2, so that the streams of all the route's users share its
// connections where the remote server agrees; small buffers for the
// connections of a remote server that speaks HTTP/1.1 only. Other
// RoundTrippers (tests) are used as they are.
func streamTransport(base http.RoundTripper) http.RoundTripper {
	t, ok := base.(*http.Transport)
	if !ok {
		return base
	}
	c := t.Clone()
	c.ForceAttemptHTTP2 = true
	c.ReadBufferSize, c.WriteBufferSize = streamBufferSize, streamBufferSize
	return c
}
