// Package hostmap maps the documented hostnames (mcp.example.com,
// auth.provider.com, ...) onto the listeners of one run of the stack.
//
// It is the only resolver and the last dialer of every HTTP client in the
// in-process stack. Names it does not know do not resolve, and it refuses and
// records every dial to an address outside loopback, so a test of the SSRF
// defences can never reach a private, link-local or public address even when
// the defence under test is broken: the scenario sees the recorded attempt
// and fails.
package hostmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Map resolves names to addresses and dials only loopback addresses.
type Map struct {
	mu      sync.Mutex
	entries map[string][]netip.AddrPort // "host:port" → targets
	local   map[string]bool             // hosts that resolve to 127.0.0.1 on every port
	refused []string
}

// New returns an empty map.
func New() *Map { return &Map{entries: make(map[string][]netip.AddrPort)} }

// Set maps host:port to target. A target outside loopback is allowed in the
// map, so that a scenario can make a name resolve to, say, a link-local
// address, but the map never dials it.
func (m *Map) Set(host string, port uint16, targets ...netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key(host, port)] = append([]netip.AddrPort(nil), targets...)
}

// SetLoopback makes host resolve to 127.0.0.1 on every port that has no
// mapping of its own: for servers on this machine outside the stack, whose
// ports the harness learns only when they answer (such as the official
// conformance suite's, which name themselves localhost).
func (m *Map) SetLoopback(host string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.local == nil {
		m.local = make(map[string]bool)
	}
	m.local[strings.ToLower(strings.TrimSuffix(host, "."))] = true
}

// Delete removes a mapping, so the name stops resolving.
func (m *Map) Delete(host string, port uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key(host, port))
}

func key(host string, port uint16) string {
	return net.JoinHostPort(strings.ToLower(strings.TrimSuffix(host, ".")), strconv.Itoa(int(port)))
}

// Resolve implements netguard.Resolver. Unknown names are an error and are
// recorded.
func (m *Map) Resolve(_ context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.entries[key(host, port)]
	if !ok && m.local[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)}, nil
	}
	if !ok {
		m.refused = append(m.refused, "resolve "+key(host, port))
		return nil, &net.DNSError{Err: "not a name of this stack", Name: host, IsNotFound: true}
	}
	return append([]netip.AddrPort(nil), t...), nil
}

// DialContext dials addr, which must be a loopback ip:port (a checked
// address); a host name is resolved through the map first. Anything outside
// loopback is refused and recorded.
func (m *Map) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var targets []netip.AddrPort
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		targets = []netip.AddrPort{ap}
	} else {
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("hostmap: bad port in %q", addr)
		}
		if targets, err = m.Resolve(ctx, host, uint16(port)); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	var firstErr error
	for _, t := range targets {
		if !t.Addr().Unmap().IsLoopback() {
			m.mu.Lock()
			m.refused = append(m.refused, "dial "+t.String()+" (for "+addr+")")
			m.mu.Unlock()
			if firstErr == nil {
				firstErr = fmt.Errorf("hostmap: refused to dial %s: the stack dials loopback only", t)
			}
			continue
		}
		c, err := d.DialContext(ctx, network, t.String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Refused returns every refused resolution and dial so far, in order.
func (m *Map) Refused() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.refused...)
}

// RefusedDials returns only the refused dials: an attempt to connect outside
// loopback, which a scenario treats as a failure.
func (m *Map) RefusedDials() []string {
	var out []string
	for _, r := range m.Refused() {
		if strings.HasPrefix(r, "dial ") {
			out = append(out, r)
		}
	}
	return out
}
