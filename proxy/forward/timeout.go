package forward

import (
	"context"
	"io"
	"net/http"
	"time"
)

// headerTimeout is a RoundTripper that gives the remote server d to start
// answering (to send its response headers). Once the answer has started,
// the body streams for as long as the remote server keeps it open: a
// server-sent event stream is never cut. It reports each request's status
// (0 when no answer came) and time to the answer's headers to observe.
type headerTimeout struct {
	base    http.RoundTripper
	d       time.Duration
	now     func() time.Time
	observe func(code int, d time.Duration)
}

// timeoutError is the error of a request the remote server did not start
// answering in time; it is a net.Error whose Timeout is true.
type timeoutError struct{}

func (timeoutError) Error() string   { return "the remote server did not start answering in time" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (h headerTimeout) RoundTrip(r *http.Request) (*http.Response, error) {
	start := h.now()
	ctx, cancel := context.WithCancel(r.Context())
	timer := time.AfterFunc(h.d, cancel)
	resp, err := h.base.RoundTrip(r.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: whatever the transport says, this was a timeout.
		cancel()
		if resp != nil {
			resp.Body.Close()
		}
		h.observe(0, h.now().Sub(start))
		return nil, timeoutError{}
	}
	if err != nil {
		cancel()
		h.observe(0, h.now().Sub(start))
		return nil, err
	}
	h.observe(resp.StatusCode, h.now().Sub(start))
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases the request's context when the body is done.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
