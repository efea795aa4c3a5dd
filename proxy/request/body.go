package request

import (
	"bytes"
	"io"
)

// Body is a request body the request path read in full, once: the first
// step that needs its bytes (the policy's inspection, or forwarding's read
// of a small body) leaves it as the request's Body, and the steps after it
// use the bytes without reading again.
type Body struct {
	b []byte
	r bytes.Reader
}

// NewBody returns a Body of b, positioned at its start.
func NewBody(b []byte) *Body {
	body := &Body{b: b}
	body.r.Reset(b)
	return body
}

// Bytes are the whole body, whatever has been read of it.
func (b *Body) Bytes() []byte { return b.b }

func (b *Body) Read(p []byte) (int, error) { return b.r.Read(p) }

// Close does nothing: the bytes are in memory.
func (b *Body) Close() error { return nil }

// Reader returns a new reader of the whole body (a request's GetBody).
func (b *Body) Reader() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.b)), nil }
