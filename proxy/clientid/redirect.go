package clientid

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxRedirectURI bounds the length of a redirect URI the proxy accepts.
const MaxRedirectURI = 2000

// loopbackHosts are the hosts a plain-http redirect URI may name: the
// loopback addresses of RFC 8252 §7.3, and "localhost", which §8.3 does not
// recommend but which the MCP specification's own example document lists
// and command-line MCP clients use.
var loopbackHosts = []string{"127.0.0.1", "[::1]", "localhost"}

// neverSchemes are schemes that run or show content in the browser itself
// (RFC 9700 §4.1): a redirect there is never the client receiving a code.
var neverSchemes = []string{"javascript", "data", "file", "vbscript", "blob", "about", "filesystem"}

// CheckRedirectURI reports why uri cannot be a redirect URI of a client, or
// nil. It is the one rule for every kind of client (RFC 8252, RFC 9700
// §4.1 and §4.11.2):
//
//   - every client: https with a host, or http on a loopback host
//     (127.0.0.1, [::1] or localhost, any port);
//   - native clients (application_type native) also: a private-use scheme
//     that is a reverse domain name, such as com.example.app:/callback;
//   - never: javascript:, data:, file: and the like, a fragment, user
//     information, or a relative URI.
//
// The error's text is a phrase that follows the URI's name, such as
// "redirect_uris[0] " + err.Error(); it quotes no more of the URI than its
// scheme or host.
func CheckRedirectURI(uri string, native bool) error {
	if len(uri) > MaxRedirectURI {
		return fmt.Errorf("is longer than %d characters", MaxRedirectURI)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return errors.New("is not a URI")
	}
	scheme := strings.ToLower(u.Scheme)
	if err := checkNeverAllowed(uri, u, scheme); err != nil {
		return err
	}
	return checkScheme(u, scheme, native)
}

// checkNeverAllowed reports what uri has that no redirect URI may have: no
// scheme, a scheme that runs in the browser, a fragment, user information.
func checkNeverAllowed(uri string, u *url.URL, scheme string) error {
	switch {
	case scheme == "":
		return errors.New("is not an absolute URI: it needs a scheme, such as https")
	case containsFold(neverSchemes, scheme):
		return fmt.Errorf("uses the scheme %q, which the proxy never sends a browser to", scheme)
	case u.Fragment != "" || strings.Contains(uri, "#"):
		return errors.New("has a fragment (#...), which a redirect URI must not have (RFC 6749 §3.1.2)")
	case u.User != nil:
		return errors.New("carries user information (user@host), which a redirect URI must not have")
	}
	return nil
}

// checkScheme applies the rule of u's scheme: https with a host, http on a
// loopback host, or, for a native client only, a private-use scheme that
// is a reverse domain name.
func checkScheme(u *url.URL, scheme string, native bool) error {
	switch scheme {
	case "https":
		if u.Host == "" || u.Opaque != "" {
			return errors.New("uses https without a host")
		}
		return nil
	case "http":
		if u.Opaque != "" || !containsFold(loopbackHosts, hostWithoutPort(u)) {
			return fmt.Errorf("uses http on the host %q, which is not loopback: use https, or http on 127.0.0.1, [::1] or localhost", hostWithoutPort(u))
		}
		return nil
	}
	if !native {
		return fmt.Errorf("uses the private-use scheme %q, which only native clients (application_type native) may use; a web client's redirect URIs use https", scheme)
	}
	if !strings.Contains(scheme, ".") {
		return fmt.Errorf("uses the private-use scheme %q, which is not a reverse domain name such as com.example.app (RFC 8252 §7.1)", scheme)
	}
	return nil
}

// LooksNative reports whether uri is a redirect URI of the kind only a
// native app registers (RFC 8252 §7): http on a loopback host, or a
// private-use scheme that is a reverse domain name. Dynamic registration
// uses it to default application_type; it does not check the URI.
func LooksNative(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "http":
		return u.Opaque == "" && containsFold(loopbackHosts, hostWithoutPort(u))
	case "https", "":
		return false
	default:
		return strings.Contains(scheme, ".")
	}
}

// hostWithoutPort is the URI's host as it is written, brackets kept for an
// IPv6 address, without the port.
func hostWithoutPort(u *url.URL) string {
	h := u.Hostname()
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
