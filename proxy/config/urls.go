package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/hostname"
)

func validateDomains(list []string, p string, d *decoder) {
	for i, h := range list {
		hp := fmt.Sprintf("%s[%d]", p, i)
		if msg := checkDomainPattern(h); msg != "" {
			d.errorf(d.pos(hp), hp, "%s", msg)
		}
	}
}

// checkDomainPattern checks an allowlist entry: a host name or *.suffix.
func checkDomainPattern(h string) string {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || strings.ContainsAny(name, "*/:@ ") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Sprintf("%q is not a host name or a *.example.com wildcard", h)
	}
	return ""
}

// DomainAllowed reports whether host matches one of the patterns.
func DomainAllowed(host string, patterns []string) bool {
	host = hostname.Name(host)
	for _, p := range patterns {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// parseFrom checks a route's from: an absolute https URL with a host and
// no path, query or fragment.
func parseFrom(s string) (*url.URL, string) {
	u, msg := parseServiceURL(s)
	if msg != "" {
		return nil, msg
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Sprintf("%q has a path or query; from names only the host, such as %s://%s", s, u.Scheme, u.Host)
	}
	u.Path = ""
	return u, ""
}

// parseServiceURL checks an absolute URL of a service: https, or plain
// http only when the host is loopback (everything then stays on one machine).
func parseServiceURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		hint := ""
		if !strings.Contains(s, "://") {
			hint = "; write it as https://" + s
		}
		return nil, fmt.Sprintf("%q is not an absolute URL%s", s, hint)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Sprintf("%q must not carry user information or a fragment", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Sprintf("%q uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])", s)
		}
	default:
		return nil, fmt.Sprintf("%q has scheme %q; use https", s, u.Scheme)
	}
	u.Host = strings.ToLower(u.Host)
	return u, ""
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
