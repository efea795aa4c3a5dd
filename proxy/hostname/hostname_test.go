package hostname

import "testing"

func TestKey(t *testing.T) {
	for _, tc := range []struct{ scheme, in, want string }{
		{"https", "mcp.example.com", "mcp.example.com"},
		{"https", "MCP.Example.COM", "mcp.example.com"},
		{"https", "mcp.example.com:443", "mcp.example.com"},
		{"https", "mcp.example.com.:443", "mcp.example.com"},
		{"https", "mcp.example.com:8443", "mcp.example.com:8443"},
		{"http", "localhost:80", "localhost"},
		{"http", "localhost:443", "localhost:443"},
		{"https", "[::1]:443", "[::1]"},
		{"https", "[::1]:8443", "[::1]:8443"},
		{"https", "127.0.0.1:443", "127.0.0.1"},
	} {
		if got := Key(tc.scheme, tc.in); got != tc.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tc.scheme, tc.in, got, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Remote.Example.com", "remote.example.com"},
		{"remote.example.com.:8443", "remote.example.com"},
		{"[::1]:443", "::1"},
		{"::1", "::1"},
		{" auth.example.com ", "auth.example.com"},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkKeyOfAPlainHost: the route lookup of every request.
func BenchmarkKeyOfAPlainHost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Key("https", "mcp.example.com")
	}
}
