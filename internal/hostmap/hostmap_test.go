package hostmap

import (
	"context"
	"net/netip"
	"testing"
)

func TestSetLoopback(t *testing.T) {
	m := New()
	m.SetLoopback("LocalHost.")
	m.Set("localhost", 443, netip.MustParseAddrPort("127.0.0.1:9443"))
	for _, tc := range []struct {
		host string
		port uint16
		want string
	}{
		{"localhost", 4711, "127.0.0.1:4711"},
		{"localhost", 443, "127.0.0.1:9443"}, // a mapping of its own wins
	} {
		got, err := m.Resolve(context.Background(), tc.host, tc.port)
		if err != nil || len(got) != 1 || got[0].String() != tc.want {
			t.Errorf("Resolve(%s, %d) = %v, %v; want %s", tc.host, tc.port, got, err, tc.want)
		}
	}
	if _, err := m.Resolve(context.Background(), "other.example", 4711); err == nil {
		t.Error("a name never set resolved")
	}
}
