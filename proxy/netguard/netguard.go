// Package netguard dials outbound connections with a server-side request
// forgery (SSRF) defence: a host learned from remote input (a metadata
// document, a header, a client id URL) must resolve to public addresses, and
// the connection goes to exactly the address that was checked, so a DNS answer
// cannot change between the check and the dial.
//
// Hosts that an operator named in configuration are trusted wherever they
// resolve: internal upstreams are normal. Everything else that resolves to a
// special-use address (RFC 6890: loopback, private, link-local, shared,
// documentation, multicast, ...) is refused before any dial.
package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
)

// Resolver turns a host and port into the addresses to dial. The system
// resolver keeps the port; the harness's resolver maps the stack's names onto
// loopback listeners and may change the port too.
type Resolver interface {
	Resolve(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error)
}

// SystemResolver resolves with the operating system's DNS.
type SystemResolver struct{}

// Resolve implements [Resolver].
func (SystemResolver) Resolve(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), port))
	}
	return out, nil
}

// RefusedError reports a connection that the guard refused before dialing.
type RefusedError struct {
	Host   string     // the host name as given
	Addr   netip.Addr // the address it resolved to
	Reason string     // which special-use range the address is in
}

func (e *RefusedError) Error() string {
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		return fmt.Sprintf("refused to connect to %s: it resolves to %s, a %s address, and it is not a host named in the configuration", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused to connect to %s: it is a %s address and not a host named in the configuration", e.Host, e.Reason)
}

// ErrRefused matches every [RefusedError] with errors.Is.
var ErrRefused = errors.New("refused by the SSRF guard")

// Is reports whether target is [ErrRefused].
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Guard dials with the SSRF defence described in the package comment.
type Guard struct {
	// Resolver resolves host names. Nil means the system resolver.
	Resolver Resolver
	// AllowLoopback lets any host resolve to a loopback address. It exists for
	// a person trying the proxy on one machine; it is off in production.
	AllowLoopback bool
	// Dial makes the TCP connection to a checked address. Nil means a
	// net.Dialer with a 10 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.RWMutex
	trusted map[string]bool
}

// Trust adds hosts that may resolve to special-use addresses, because an
// operator named them. Each entry is host[:port]: the host is trusted on
// that port only (443 when none is given), so that a trusted internal host
// cannot be used to probe its other ports. Names are compared as
// [hostname.Name] spells them.
func (g *Guard) Trust(entries ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.trusted == nil {
		g.trusted = make(map[string]bool)
	}
	for _, e := range entries {
		if k := trustKey(e); k != "" {
			g.trusted[k] = true
		}
	}
}

// Trusted reports whether host on port was named with [Guard.Trust].
func (g *Guard) Trusted(host string, port uint16) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.trusted[net.JoinHostPort(normalizeHost(host), strconv.Itoa(int(port)))]
}

// trustKey spells a Trust entry as name:port.
func trustKey(entry string) string {
	entry = strings.TrimSpace(entry)
	port := "443"
	if h, p, err := net.SplitHostPort(entry); err == nil {
		entry, port = h, p
	}
	name := normalizeHost(entry)
	if name == "" {
		return ""
	}
	return net.JoinHostPort(name, port)
}

func normalizeHost(h string) string { return hostname.Name(h) }

// Check resolves host and reports the addresses a dial may use, or a
// [RefusedError] when the host is untrusted and resolves to a special-use
// address. Every address must pass: one bad answer refuses the host.
func (g *Guard) Check(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	var addrs []netip.AddrPort
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), port)}
	} else {
		r := g.Resolver
		if r == nil {
			r = SystemResolver{}
		}
		addrs, err = r.Resolve(ctx, host, port)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s has no addresses", host)
		}
	}
	if g.Trusted(host, port) {
		return addrs, nil
	}
	for _, a := range addrs {
		ip := a.Addr().Unmap()
		if g.AllowLoopback && ip.IsLoopback() {
			continue
		}
		if reason := SpecialUse(ip); reason != "" {
			return nil, &RefusedError{Host: host, Addr: ip, Reason: reason}
		}
	}
	return addrs, nil
}

// DialContext has the signature of [net.Dialer.DialContext].
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", address)
	}
	addrs, err := g.Check(ctx, host, uint16(port))
	if err != nil {
		return nil, err
	}
	dial := g.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	var firstErr error
	for _, a := range addrs {
		c, err := dial(ctx, network, a.String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// specialUse lists the special-purpose ranges of RFC 6890 and its updates
// that netip's predicates do not already name.
var specialUse = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

// SpecialUse names the special-use range ip falls in, or returns "" for an
// ordinary public unicast address.
func SpecialUse(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, s := range specialUse {
		if s.prefix.Contains(ip) {
			return s.reason
		}
	}
	return ""
}

// TransportOptions tune the shared transport for outbound HTTPS.
type TransportOptions struct {
	// RootCAs are the roots trusted for TLS. Nil means the system roots.
	RootCAs *x509.CertPool
	// MaxIdleConnsPerHost bounds idle keep-alive connections per host.
	// Zero means 64, enough for a busy upstream on a small machine.
	MaxIdleConnsPerHost int
}

// NewTransport returns an HTTP transport that dials through dial (usually a
// [Guard]'s DialContext) and never uses an environment proxy: a proxy would
// do the resolution, and the guard could not see the address.
func NewTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), o TransportOptions) *http.Transport {
	perHost := o.MaxIdleConnsPerHost
	if perHost == 0 {
		perHost = 64
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * perHost,
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NoRedirects is an http.Client CheckRedirect that returns the redirect
// response itself: metadata and client documents must not redirect.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// StaticResolver answers for the host:port pairs it maps, like curl's
// --resolve, and asks Fallback (nil: the system resolver) for the rest. The
// guard still checks what it returns.
type StaticResolver struct {
	Map      map[string][]netip.AddrPort // "host:port" → addresses
	Fallback Resolver
}

// ParseResolve reads one "host:port:addr" mapping (addr may be an IPv6
// address in brackets) into r.
func (r *StaticResolver) ParseResolve(s string) error {
	host, rest, ok := strings.Cut(s, ":")
	port, addr, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || host == "" {
		return fmt.Errorf("%q is not host:port:address", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%q: bad port %q", s, port)
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
		ap = netip.AddrPortFrom(a, uint16(p))
	} else if ap, err = netip.ParseAddrPort(addr); err != nil {
		return fmt.Errorf("%q: %q is not an IP address or address:port", s, addr)
	}
	if r.Map == nil {
		r.Map = make(map[string][]netip.AddrPort)
	}
	k := net.JoinHostPort(normalizeHost(host), port)
	r.Map[k] = append(r.Map[k], ap)
	return nil
}

// Resolve implements [Resolver].
func (r *StaticResolver) Resolve(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	if a, ok := r.Map[net.JoinHostPort(normalizeHost(host), strconv.Itoa(int(port)))]; ok {
		return a, nil
	}
	fb := r.Fallback
	if fb == nil {
		fb = SystemResolver{}
	}
	return fb.Resolve(ctx, host, port)
}
