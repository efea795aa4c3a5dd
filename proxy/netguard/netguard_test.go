package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestSpecialUse(t *testing.T) {
	for addr, want := range map[string]string{
		"8.8.8.8":         "",
		"2606:4700::1111": "",
		"127.0.0.1":       "loopback",
		"::1":             "loopback",
		"10.1.2.3":        "private",
		"172.16.0.1":      "private",
		"192.168.1.1":     "private",
		"169.254.169.254": "link-local",
		"fe80::1":         "link-local",
		"fd00::1":         "private",
		"100.64.0.1":      "shared (carrier-grade NAT)",
		"0.0.0.0":         "unspecified",
		"192.0.2.1":       "documentation",
		"::ffff:10.0.0.1": "private",
		"224.0.0.1":       "multicast",
		"64:ff9b::a00:1":  "NAT64",
	} {
		if got := SpecialUse(netip.MustParseAddr(addr)); got != want {
			t.Errorf("SpecialUse(%s) = %q, want %q", addr, got, want)
		}
	}
}

// mapResolver resolves from a fixed table.
type mapResolver map[string][]netip.AddrPort

func (m mapResolver) Resolve(_ context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestGuardRefusesBeforeDialing(t *testing.T) {
	res := mapResolver{
		"metadata.internal": {netip.MustParseAddrPort("169.254.169.254:443")},
		"mixed.example":     {netip.MustParseAddrPort("8.8.8.8:443"), netip.MustParseAddrPort("10.0.0.7:443")},
		"internal.example":  {netip.MustParseAddrPort("10.0.0.8:443")},
		"public.example":    {netip.MustParseAddrPort("8.8.4.4:443")},
		"local.example":     {netip.MustParseAddrPort("127.0.0.1:443")},
	}
	var dialed []string
	g := &Guard{Resolver: res, Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return nil, errors.New("test dialer: not connecting")
	}}
	g.Trust("Internal.Example.")
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"metadata.internal:443", true},
		{"mixed.example:443", true}, // one bad answer refuses the host
		{"[fe80::1]:443", true},
		{"10.9.9.9:443", true},
		{"local.example:443", true},
		{"internal.example:443", false}, // named by the operator
		{"public.example:443", false},
	} {
		dialed = nil
		_, err := g.DialContext(context.Background(), "tcp", tc.addr)
		if got := errors.Is(err, ErrRefused); got != tc.refused {
			t.Errorf("%s: refused = %v (err %v), want %v", tc.addr, got, err, tc.refused)
		}
		if tc.refused && len(dialed) > 0 {
			t.Errorf("%s: dialed %v although refused", tc.addr, dialed)
		}
		if !tc.refused && len(dialed) != 1 {
			t.Errorf("%s: dialed %v, want exactly the checked address", tc.addr, dialed)
		}
	}
	g.AllowLoopback = true
	dialed = nil
	if _, err := g.DialContext(context.Background(), "tcp", "local.example:443"); errors.Is(err, ErrRefused) {
		t.Errorf("AllowLoopback: loopback still refused: %v", err)
	}
}

func TestStaticResolver(t *testing.T) {
	var r StaticResolver
	r.Fallback = mapResolver{}
	for _, s := range []string{"a.example:443:127.0.0.1", "b.example:8443:[::1]", "c.example:443:127.0.0.1:9000"} {
		if err := r.ParseResolve(s); err != nil {
			t.Fatalf("ParseResolve(%q): %v", s, err)
		}
	}
	for _, bad := range []string{"a.example", "a.example:x:1.2.3.4", "a.example:443:nope"} {
		if err := r.ParseResolve(bad); err == nil {
			t.Errorf("ParseResolve(%q) = nil, want an error", bad)
		}
	}
	got, err := r.Resolve(context.Background(), "A.example", 443)
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:443") {
		t.Errorf("Resolve(a.example:443) = %v, %v", got, err)
	}
	got, _ = r.Resolve(context.Background(), "c.example", 443)
	if len(got) != 1 || got[0].Port() != 9000 {
		t.Errorf("Resolve(c.example:443) = %v, want port 9000", got)
	}
	if _, err := r.Resolve(context.Background(), "a.example", 80); err == nil {
		t.Error("an unmapped port fell through to a mapping")
	}
}

// TestTrustIsPerPort: a trusted host is trusted on the port it was named
// with (443 when none), not on its other ports.
func TestTrustIsPerPort(t *testing.T) {
	g := &Guard{Resolver: mapResolver{"internal.example": {netip.MustParseAddrPort("10.0.0.8:443")}}}
	g.Trust("internal.example", "other.example:8443")
	for _, tc := range []struct {
		host    string
		port    uint16
		trusted bool
	}{
		{"internal.example", 443, true},
		{"INTERNAL.example.", 443, true},
		{"internal.example", 8080, false},
		{"other.example", 8443, true},
		{"other.example", 443, false},
	} {
		if got := g.Trusted(tc.host, tc.port); got != tc.trusted {
			t.Errorf("Trusted(%s, %d) = %v, want %v", tc.host, tc.port, got, tc.trusted)
		}
	}
}
