package clientid

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzCheckURL: checking a client id never panics, and an accepted one is
// an https URL without user information or fragment.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://client.example.net/oauth/client-metadata.json",
		"https://u:p@client.example/x", "http://client.example/x", "https://client.example/a/../b",
		"https://client.example", "https://client.example/#x", "", "https://[::1]/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if err := CheckURL(id); err != nil {
			if strings.Contains(id, "@") && strings.Contains(err.Error(), id) && Redact(id) != id {
				t.Fatalf("the error shows the user information: %v", err)
			}
			return
		}
		u, err := url.Parse(id)
		if err != nil || u.Scheme != "https" || u.User != nil || strings.Contains(id, "#") || Redact(id) != id {
			t.Fatalf("accepted %q", id)
		}
	})
}

// FuzzCheckRedirectURI: checking a redirect URI never panics, and an
// accepted one is absolute, has no fragment or user information, and is
// https with a host, http on a loopback host, or (native only) a
// private-use scheme with a dot, never one that runs in the browser.
func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://client.example.net/cb", "http://127.0.0.1:3000/cb", "http://[::1]/cb", "http://localhost/cb",
		"com.example.app:/cb", "javascript:alert(1)", "JAVASCRIPT:x", "data:text/html,x", "file:///etc/passwd",
		"https://c.example/cb#f", "https://u:p@c.example/cb", "http://c.example/cb", "//c.example/cb", "https:x",
		"http://127.0.0.1@evil.example/", "http://localhost%2e/", "java\tscript:x",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, uri string, native bool) {
		if err := CheckRedirectURI(uri, native); err != nil {
			if strings.Contains(uri, "@") && (strings.Contains(err.Error(), uri)) {
				t.Fatalf("the error quotes the whole URI: %v", err)
			}
			return
		}
		u, err := url.Parse(uri)
		if err != nil || u.Scheme == "" || u.User != nil || strings.Contains(uri, "#") {
			t.Fatalf("accepted %q", uri)
		}
		switch s := strings.ToLower(u.Scheme); {
		case s == "https":
			if u.Host == "" {
				t.Fatalf("accepted https without a host: %q", uri)
			}
		case s == "http":
			if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && !strings.EqualFold(h, "localhost") {
				t.Fatalf("accepted http on %q: %q", h, uri)
			}
		case slices.Contains(neverSchemes, s):
			t.Fatalf("accepted the scheme %s: %q", s, uri)
		default:
			if !native || !strings.Contains(s, ".") {
				t.Fatalf("accepted the private-use scheme %s (native %v): %q", s, native, uri)
			}
		}
	})
}
