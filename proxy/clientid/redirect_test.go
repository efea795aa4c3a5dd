package clientid

import (
	"strings"
	"testing"
)

// TestCheckRedirectURI: each rule of the redirect URI check, for web and
// native clients, with the text that names it.
func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri    string
		native bool
		want   string // "" accepted, else a part of the reason
	}{
		{"https://client.example.net/cb", false, ""},
		{"https://client.example.net:8443/cb?x=1", false, ""},
		{"http://127.0.0.1:33418/callback", false, ""},
		{"http://[::1]:8080/cb", false, ""},
		{"http://localhost:3000/callback", false, ""},
		{"http://LOCALHOST/cb", true, ""},
		{"com.example.app:/oauth2redirect", true, ""},
		{"HTTPS://client.example.net/cb", false, ""},
		{"javascript:alert(document.domain)", false, `uses the scheme "javascript", which the proxy never sends a browser to`},
		{"JavaScript:alert(1)", true, `uses the scheme "javascript"`},
		{"data:text/html,<script>alert(1)</script>", true, `uses the scheme "data"`},
		{"file:///etc/passwd", true, `uses the scheme "file"`},
		{"https://client.example.net/cb#frag", false, "has a fragment"},
		{"https://client.example.net/cb#", false, "has a fragment"},
		{"https://user:pw@client.example.net/cb", false, "carries user information"},
		{"http://client.example.net/cb", false, `uses http on the host "client.example.net", which is not loopback`},
		{"http://127.0.0.2/cb", true, "which is not loopback"},
		{"http://localhost.evil.example/cb", true, "which is not loopback"},
		{"com.example.app:/cb", false, `uses the private-use scheme "com.example.app", which only native clients (application_type native) may use`},
		{"myapp:/cb", true, "which is not a reverse domain name"},
		{"/relative/cb", false, "is not an absolute URI"},
		{"https:///cb", false, "uses https without a host"},
		{"https:opaque", false, "uses https without a host"},
		{"https://client.example.net/" + strings.Repeat("a", MaxRedirectURI), false, "is longer than"},
		{"%zz", false, "is not a URI"},
	} {
		err := CheckRedirectURI(tc.uri, tc.native)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckRedirectURI(%q, native=%v) = %v, want accepted", tc.uri, tc.native, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckRedirectURI(%q, native=%v) = %v, want %q", tc.uri, tc.native, err, tc.want)
		case err != nil && strings.Contains(tc.uri, "pw@") && strings.Contains(err.Error(), "pw"):
			t.Errorf("the error %v shows the user information", err)
		}
	}
}
