package mcpremote

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// startProxy serves the CONNECT proxy on 127.0.0.1 and returns its URL.
// It tunnels to the stack's names only (the stack's dialer refuses and
// records others) and answers anything but CONNECT with 405.
func (c *Client) startProxy() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	c.proxy = &http.Server{Handler: http.HandlerFunc(c.tunnel), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.proxy.Serve(l) }()
	return "http://" + l.Addr().String(), nil
}

func (c *Client) tunnel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "this proxy only tunnels (CONNECT) to the stack's names", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	up, err := c.stack.DialContext(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		http.Error(w, "not a name of the stack: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, rw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	_, _ = down.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(up, rw); closeWrite(up) }()
	go func() { defer wg.Done(); _, _ = io.Copy(down, up); closeWrite(down) }()
	go func() { wg.Wait(); up.Close(); down.Close() }()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Close()
	}
}
