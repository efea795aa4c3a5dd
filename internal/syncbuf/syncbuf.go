// Package syncbuf is a bytes.Buffer that goroutines may write and read at
// once: the log of a server under test, or a child process's stderr, read
// by a test while it is still being written.
package syncbuf

import (
	"bytes"
	"io"
	"sync"
)

// Buffer collects what is written to it. The zero value is an empty
// buffer that keeps everything.
type Buffer struct {
	// Limit, when above zero, bounds what the buffer keeps: once it holds
	// more than Limit bytes, later writes are dropped (and reported as
	// written, so that a chatty writer is not stopped by an error).
	Limit int

	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

// Write appends p, and writes it to the tee set by [Buffer.Tee], if any.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tee != nil {
		_, _ = b.tee.Write(p) // the tee is a copy for a person; the buffer is the record
	}
	if b.Limit > 0 && b.buf.Len() > b.Limit {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what the buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tee writes what the buffer holds so far to w, and from then on every
// write as it comes, in order: nothing is lost or repeated between the two.
func (b *Buffer) Tee(w io.Writer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tee = w
	_, err := w.Write(b.buf.Bytes())
	return err
}
