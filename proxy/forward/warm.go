package forward

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mcp-proxy/mcp-proxy/proxy/dpop"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

// The warm path's plumbing (docs/performance.md): what the request path
// does per request without allocating what a pool or a precomputed value
// can give it, and without a write or a flush that the traffic does not
// need.

// copyBufferSize is the size of the buffers answers are copied through,
// the size httputil.ReverseProxy allocates for each answer when it has no
// pool.
const copyBufferSize = 32 << 10

// copyBuffers lend the ReverseProxy its copy buffers, so an answer costs no
// 32 KiB allocation (and the collector no 32 KiB to sweep).
var copyBuffers = &bufferPool{}

// bufferPool pools arrays, not slices: a slice converts back to the
// pointer to its array without an allocation, where putting a slice in a
// sync.Pool would allocate its header each time.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}

// MaxBufferedBody is the largest request body (with a Content-Length) the
// proxy reads before forwarding, so that the transport writes the request
// line, headers and body in one write. Larger bodies, and bodies of unknown
// length, stream as they come. MCP requests are JSON-RPC messages of a few
// hundred bytes.
const MaxBufferedBody = 64 << 10

// readSmallBody reads r's body when it is small and of known length, so
// that it can go out in one write with the headers; r.Body is then a
// *request.Body. A body an earlier step read already is left as it is. A
// body over the route's limit fails here as it would have in the transport
// (http.MaxBytesError).
func readSmallBody(r *http.Request) error {
	n := r.ContentLength
	if _, read := r.Body.(*request.Body); read || n <= 0 || n > MaxBufferedBody || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return err
	}
	r.Body = request.NewBody(b)
	return nil
}

// setBody gives the outbound request the body an earlier step read, as a
// reader the transport knows is in memory (it then writes the headers and
// the body together).
func setBody(in, out *http.Request) {
	bb, ok := in.Body.(*request.Body)
	if !ok {
		return
	}
	out.Body = io.NopCloser(bytes.NewReader(bb.Bytes()))
	out.ContentLength = int64(len(bb.Bytes()))
	out.GetBody = bb.Reader
}

// MaxBufferedAnswer is the largest answer of unknown length (chunked) the
// proxy collects before relaying it. httputil.ReverseProxy flushes such an
// answer after every chunk it copies, in case it is a stream; a JSON
// answer is not one, and gets one write with a Content-Length instead.
// Server-sent events are never collected: every event is flushed at once.
const MaxBufferedAnswer = 64 << 10

// collectAnswer reads a JSON answer of unknown length into memory when it
// ends within MaxBufferedAnswer, and gives it its length; a longer one is
// relayed as it comes, after what was read.
func collectAnswer(resp *http.Response) error {
	if resp.ContentLength != -1 || resp.StatusCode == http.StatusSwitchingProtocols || resp.Request.Method == http.MethodHead {
		return nil
	}
	// Only JSON: any other answer of unknown length may be a stream
	// (server-sent events above all), relayed as it comes.
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil
	}
	buf := copyBuffers.Get()
	n, err := io.ReadFull(resp.Body, buf[:min(len(buf), MaxBufferedAnswer)])
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		// The whole answer is here.
		resp.Body.Close()
		resp.Body = &collected{Reader: bytes.NewReader(buf[:n]), buf: buf}
		resp.ContentLength = int64(n)
		resp.TransferEncoding = nil
		resp.Header["Content-Length"] = []string{strconv.Itoa(n)}
		return nil
	case err != nil:
		copyBuffers.Put(buf)
		return err
	}
	// Longer than the limit: what was read first, then the rest as it
	// comes (still flushed chunk by chunk: it may be a stream after all).
	head := bytes.Clone(buf[:n])
	copyBuffers.Put(buf)
	resp.Body = &prefixed{Reader: io.MultiReader(bytes.NewReader(head), resp.Body), Closer: resp.Body}
	return nil
}

// collected is an answer held in a pooled buffer, returned on Close.
type collected struct {
	*bytes.Reader
	buf  []byte
	once sync.Once
}

func (c *collected) Close() error {
	c.once.Do(func() { copyBuffers.Put(c.buf) })
	return nil
}

type prefixed struct {
	io.Reader
	io.Closer
}

// forwardingTransport is the route's transport towards its remote
// server. When base is an *http.Transport (the proxy's guarded one), it is
// a clone that speaks HTTP/1.1, with its own pool of keep-alive
// connections: Go's HTTP/1.1 client writes a request with a small
// in-memory body in one write, where its HTTP/2 client always flushes the
// headers before the body, a third write per forwarded request on top of
// reading the request and writing the answer (docs/performance.md). Other
// RoundTrippers (tests) are used as they are.
func forwardingTransport(base http.RoundTripper) http.RoundTripper {
	t, ok := base.(*http.Transport)
	if !ok {
		return base
	}
	c := t.Clone()
	var p http.Protocols
	p.SetHTTP1(true)
	c.Protocols = &p
	if c.TLSClientConfig != nil {
		// Clone keeps "h2" when the original transport offered it already.
		c.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return c
}

// authHeaders hold the Authorization header value of each upstream token
// the route forwarded with lately, so that a warm request does not build
// "Bearer " + a token of a kilobyte or so each time. The token source
// hands out the same *upstream.Token for a key until the record changes; at
// most maxAuthHeaders are kept, then the map starts again.
type authHeaders struct {
	m sync.Map // *upstream.Token → authHeader
	n atomic.Int64
}

type authHeader struct {
	token, value string
	key          *dpop.Key // a DPoP-bound token's key, parsed once
}

const maxAuthHeaders = 4096

func (a *authHeaders) value(t *upstream.Token) string { return a.get(t).value }

// key is the key of a DPoP-bound token (upstream.Token.Bound), nil for a
// bearer token.
func (a *authHeaders) key(t *upstream.Token) *dpop.Key { return a.get(t).key }

func (a *authHeaders) get(t *upstream.Token) authHeader {
	if v, ok := a.m.Load(t); ok {
		if h := v.(authHeader); h.token == t.AccessToken {
			return h
		}
	}
	h := authHeader{token: t.AccessToken, value: "Bearer " + t.AccessToken}
	if t.Bound() {
		if k, err := dpop.ParseKey(t.DPoPKey); err == nil {
			h.value, h.key = dpop.Scheme+" "+t.AccessToken, k
		}
	}
	if a.n.Add(1) > maxAuthHeaders {
		a.m.Clear()
		a.n.Store(1)
	}
	a.m.Store(t, h)
	return h
}
