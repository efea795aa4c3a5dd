package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// writeProxyCert issues mcp-proxy a new certificate and puts it where the
// proxy reads it the way Kubernetes updates a mounted Secret: the
// certificate and its key go into a directory of their own, tls-gen, and
// the link tls is moved onto it with one rename, so that the proxy never
// reads a certificate with the other one's key. proxy.crt and proxy.key,
// the files the configuration names, are links into tls. It returns the
// certificate's serial number.
func (h *Harness) writeProxyCert(gen int) (*big.Int, error) {
	leaf, err := h.ca.Issue(allProxyHosts()...)
	if err != nil {
		return nil, err
	}
	dir := fmt.Sprintf("tls-%d", gen)
	if err := leaf.WriteFiles(h.path(filepath.Join(dir, "proxy.crt")), h.path(filepath.Join(dir, "proxy.key"))); err != nil {
		return nil, err
	}
	if err := replaceLink(dir, h.path("tls")); err != nil {
		return nil, err
	}
	if gen == 0 {
		for _, f := range []string{"proxy.crt", "proxy.key"} {
			if err := replaceLink(filepath.Join("tls", f), h.path(f)); err != nil {
				return nil, err
			}
		}
	}
	return leaf.TLS.Leaf.SerialNumber, nil
}

// replaceLink makes path a symbolic link to target, replacing what was
// there in one rename.
func replaceLink(target, path string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReloadProxy changes make load's mcp-proxy as an operator and
// cert-manager would, and sends it SIGHUP: a new certificate, and a
// configuration with a second route (ProxyPolicyHost, to the same MCP
// server, with the bench's tool policy) when extra is set, without it
// otherwise. gen numbers the change (1, 2, …). It returns the new
// certificate's serial number, for ReloadApplied.
func (h *Harness) ReloadProxy(gen int, extra bool) (*big.Int, error) {
	serial, err := h.writeProxyCert(gen)
	if err != nil {
		return nil, err
	}
	config := proxyConfig(h.adminAddr, "type: file\n  path: proxy.db", [2]string{ProxyHost, SDKHost})
	if extra {
		config = proxyConfig(h.adminAddr, "type: file\n  path: proxy.db", [2]string{ProxyHost, SDKHost},
			[2]string{ProxyPolicyHost, SDKHost}) + benchPolicy()
	}
	tmp := h.path("proxy.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, h.path("proxy.yaml")); err != nil {
		return nil, err
	}
	c := h.procs[ProxyHost]
	if c == nil {
		return nil, errors.New("bench: mcp-proxy is not running")
	}
	return serial, c.Process.Signal(syscall.SIGHUP)
}

// ReloadApplied reports whether the running mcp-proxy serves what the
// reload numbered serial set: that certificate, to a new connection, and
// ProxyPolicyHost's route when extra is set (an unauthenticated request
// gets 401 and its challenge) or no such route (404 unknown_host).
func (h *Harness) ReloadApplied(ctx context.Context, extra bool, serial *big.Int) error {
	d := tls.Dialer{Config: &tls.Config{ServerName: ProxyHost, RootCAs: h.ca.Pool(), MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", h.addrs[ProxyHost])
	if err != nil {
		return err
	}
	got := conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
	conn.Close()
	if got.Cmp(serial) != 0 {
		return fmt.Errorf("the proxy serves the certificate %x, not the new one %x", got, serial)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ProxyPolicyHost+"/mcp", strings.NewReader(`{}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.tr.RoundTrip(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case extra && resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "":
		return nil
	case !extra && resp.StatusCode == http.StatusNotFound && strings.Contains(string(body), "unknown_host"):
		return nil
	}
	return fmt.Errorf("%s answered %d (the route is there: %v)", ProxyPolicyHost, resp.StatusCode, extra)
}

// WaitReloadApplied waits, up to limit, until ReloadApplied holds, and
// returns how long that took.
func (h *Harness) WaitReloadApplied(ctx context.Context, extra bool, serial *big.Int, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error // what the last probe that ran to its end found
	for {
		err := h.ReloadApplied(ctx, extra, serial)
		if err == nil {
			return time.Since(start), nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not applied within %s: %w", limit, last)
		case <-tick.C:
		}
	}
}
