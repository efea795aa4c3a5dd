package main

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The pooled hop forwards over HTTP/2 to an upstream that offers it, and
// with -upstream-h1 over HTTP/1.1, as mcp-proxy forwards requests: the
// protocol the upstream saw, against an upstream that offers both.
func TestUpstreamTransportProtocol(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	var d net.Dialer
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, up.Listener.Addr().String())
	}
	for h1Only, want := range map[bool]string{false: "HTTP/2.0", true: "HTTP/1.1"} {
		tr := upstreamTransport(dial, roots, h1Only)
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := (&http.Client{Transport: tr}).Get("https://example.com/")
		if err != nil {
			t.Fatalf("h1Only %v: %v", h1Only, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != want {
			t.Errorf("h1Only %v: the upstream got a request over %q (%v), want %s", h1Only, got, err, want)
		}
	}
}
