// Package hostname is the one way the proxy spells a host when it compares
// hosts: configuration validation, the route map, the hosts the
// configuration names and the SSRF guard all use it, so two spellings of one
// origin can never be two routes, or one trusted and the other not.
package hostname

import (
	"net"
	"strings"
)

// Key is the comparable form of an authority (host[:port]) reached over
// scheme: lower case, without a trailing dot on the name, without the
// scheme's default port (443 for https, 80 for http), IPv6 literals in
// brackets. "MCP.Example.com:443", "mcp.example.com." and "mcp.example.com"
// have one Key.
func Key(scheme, authority string) string {
	if plain(authority) {
		return authority // the common Host header: already in its key form
	}
	host, port := split(authority)
	if port == defaultPort(scheme) {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}

// Name is the comparable form of a host name without its port: lower case,
// no trailing dot, no brackets around an IPv6 literal. Hosts the SSRF guard
// trusts are compared by Name, on any port.
func Name(authority string) string {
	if plain(authority) {
		return authority
	}
	host, _ := split(authority)
	return host
}

// plain reports whether authority is a lower-case name without port,
// brackets, spaces or trailing dot: its own Key and Name.
func plain(authority string) bool {
	if authority == "" || authority[len(authority)-1] == '.' {
		return false
	}
	for i := 0; i < len(authority); i++ {
		c := authority[i]
		if c == ':' || c == '[' || c == ' ' || c == '\t' || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

func split(authority string) (host, port string) {
	a := strings.ToLower(strings.TrimSpace(authority))
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	} else {
		host = strings.Trim(a, "[]")
	}
	return strings.TrimSuffix(host, "."), port
}

func defaultPort(scheme string) string {
	switch strings.ToLower(scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
