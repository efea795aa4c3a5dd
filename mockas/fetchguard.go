package mockas

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The double's own guard for Client ID Metadata Document fetches. It is
// deliberately not the proxy's SSRF guard: a misreading of which addresses
// are safe to fetch must not hide in both at once. It is also simpler: it
// allows only public unicast addresses (netip's own predicates), loopback
// when AllowLoopback is set, and anything for a trusted host name.

// Resolver turns a host and port into the addresses to dial (the harness's
// host map implements it).
type Resolver interface {
	Resolve(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error)
}

// refusedError is a fetch the guard refused before dialing.
type refusedError struct {
	host string
	addr netip.Addr
}

func (e *refusedError) Error() string {
	kind := "non-public"
	switch ip := e.addr.Unmap(); {
	case ip.IsLoopback():
		kind = "loopback"
	case ip.IsPrivate():
		kind = "private"
	case ip.IsLinkLocalUnicast():
		kind = "link-local"
	}
	if e.addr.String() == e.host {
		return fmt.Sprintf("refused to connect to %s: it is a %s address", e.host, kind)
	}
	return fmt.Sprintf("refused to connect to %s: it resolves to %s, a %s address", e.host, e.addr, kind)
}

type fetchGuard struct {
	resolver      Resolver
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	allowLoopback bool
	trusted       []string // lower case, no port
}

func newFetchGuard(cfg Config) *fetchGuard {
	g := &fetchGuard{resolver: cfg.Resolver, dial: cfg.Dial, allowLoopback: cfg.AllowLoopback}
	for _, h := range cfg.TrustedHosts {
		g.trusted = append(g.trusted, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	if g.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		g.dial = d.DialContext
	}
	return g
}

func (g *fetchGuard) allowed(host string, ip netip.Addr) bool {
	if slices.Contains(g.trusted, strings.ToLower(strings.TrimSuffix(host, "."))) {
		return true
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return g.allowLoopback
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}

func (g *fetchGuard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", address)
	}
	var addrs []netip.AddrPort
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}
	} else if g.resolver != nil {
		if addrs, err = g.resolver.Resolve(ctx, host, uint16(port)); err != nil {
			return nil, err
		}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no addresses", host)
	}
	for _, a := range addrs {
		if !g.allowed(host, a.Addr()) {
			return nil, &refusedError{host: host, addr: a.Addr()}
		}
	}
	return g.dial(ctx, network, addrs[0].String())
}

func (g *fetchGuard) client(roots *x509.CertPool, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         g.dialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}
