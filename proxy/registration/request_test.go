package registration

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeAcceptsAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, body, appType string
	}{
		{"loopback without application_type is native", `{"redirect_uris":["http://localhost:3334/oauth/callback"],"client_name":"MCP CLI Client"}`, Native},
		{"127.0.0.1 any port", `{"redirect_uris":["http://127.0.0.1:49152/cb"]}`, Native},
		{"[::1]", `{"redirect_uris":["http://[::1]:8080/cb"],"application_type":"native"}`, Native},
		{"private-use scheme", `{"redirect_uris":["com.example.app:/callback"]}`, Native},
		{"https web", `{"redirect_uris":["https://app.example.net/cb"],"token_endpoint_auth_method":"none"}`, Web},
		{"native may use https", `{"redirect_uris":["https://app.example.net/cb"],"application_type":"native"}`, Native},
		{"https beside loopback is web", `{"redirect_uris":["https://app.example.net/cb","http://127.0.0.1:49152/cb"]}`, Web},
		{"web may use loopback", `{"redirect_uris":["http://127.0.0.1:49152/cb"],"application_type":"web"}`, Web},
		{"unknown fields ignored", `{"redirect_uris":["https://a.example/cb"],"scope":"x","software_statement":"eyJ...","jwks":{"keys":[]}}`, Web},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decode([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if r.ApplicationType != tc.appType {
				t.Errorf("application_type = %q, want %q", r.ApplicationType, tc.appType)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, code, want string
	}{
		{"not JSON", `redirect_uris=x`, CodeInvalidClientMetadata, "not a JSON object"},
		{"array", `[1]`, CodeInvalidClientMetadata, "not a JSON object"},
		{"wrong type", `{"redirect_uris":"https://a.example/cb"}`, CodeInvalidClientMetadata, "redirect_uris has the wrong type"},
		{"no redirect URIs", `{}`, CodeInvalidRedirectURI, "redirect_uris is missing"},
		{"confidential", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_post"}`, CodeInvalidClientMetadata, `"client_secret_post" is not supported`},
		{"private_key_jwt", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, CodeInvalidClientMetadata, "public clients only"},
		{"implicit", `{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}`, CodeInvalidClientMetadata, "grant_types"},
		{"no authorization_code", `{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}`, CodeInvalidClientMetadata, "must include authorization_code"},
		{"token response type", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, CodeInvalidClientMetadata, "response_types"},
		{"bad application_type", `{"redirect_uris":["https://a.example/cb"],"application_type":"desktop"}`, CodeInvalidClientMetadata, "application_type"},
		{"long name", `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("x", 101) + `"}`, CodeInvalidClientMetadata, "client_name is longer"},
		{"control in name", `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0007b"}`, CodeInvalidClientMetadata, "control characters"},
		{"http client_uri", `{"redirect_uris":["https://a.example/cb"],"client_uri":"http://a.example"}`, CodeInvalidClientMetadata, "client_uri"},
		{"too many redirect URIs", `{"redirect_uris":["https://a/1","https://a/2","https://a/3","https://a/4","https://a/5","https://a/6","https://a/7","https://a/8","https://a/9","https://a/10","https://a/11"]}`, CodeInvalidRedirectURI, "at most 10"},
		{"too large", `{"redirect_uris":["https://a.example/cb"],"x":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, CodeInvalidClientMetadata, "larger than 16384 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body))
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if re.Code != tc.code || !strings.Contains(re.Description, tc.want) {
				t.Errorf("got %s: %s\nwant %s containing %q", re.Code, re.Description, tc.code, tc.want)
			}
		})
	}
}

// TestDecodeRedirectURIs: registration applies clientid's one redirect URI
// rule with the request's application_type (named or derived), and names
// the refused URI by its index.
func TestDecodeRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		appType string // "" leaves application_type out
		uris    string
		want    string // "" accepted, else a part of the description
	}{
		{Web, `"https://app.example.net/cb"`, ""},
		{Web, `"http://127.0.0.1:8080/cb"`, ""},
		{Web, `"http://localhost:3334/oauth/callback"`, ""},
		{Web, `"https://localhost/cb"`, ""},
		{Web, `"https://app.example.net/cb","http://127.0.0.1:49152/cb"`, ""},
		{"", `"https://app.example.net/cb","http://127.0.0.1:49152/cb"`, ""},
		{Native, `"http://[::1]:1/cb"`, ""},
		{Native, `"com.example.app:/cb"`, ""},
		{Native, `"https://app.example.net/cb"`, ""},
		{Web, `"http://app.example.net/cb"`, `redirect_uris[0] uses http on the host "app.example.net", which is not loopback`},
		{Native, `"http://127.0.0.2:8080/cb"`, "which is not loopback"},
		{Native, `"http://localhost.evil.example/cb"`, "which is not loopback"},
		{Web, `"com.example.app:/cb"`, `redirect_uris[0] uses the private-use scheme "com.example.app", which only native clients`},
		{"", `"https://app.example.net/cb","com.example.app:/cb"`, `redirect_uris[1] uses the private-use scheme`},
		{Native, `"myapp:/cb"`, "not a reverse domain name"},
		{Native, `"javascript:alert(1)"`, `uses the scheme "javascript"`},
		{"", `"https://app.example.net/cb#frag"`, "has a fragment"},
		{Native, `"http://user:pw@127.0.0.1/cb"`, "carries user information"},
		{"", `"/relative"`, "is not an absolute URI"},
		{"", `"https://app.example.net/` + strings.Repeat("a", 2000) + `"`, "redirect_uris[0] is longer than 2000 characters"},
	} {
		body := `{"redirect_uris":[` + tc.uris + `]`
		if tc.appType != "" {
			body += `,"application_type":"` + tc.appType + `"`
		}
		body += "}"
		_, err := Decode([]byte(body))
		var re *Error
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", body, err)
		case tc.want == "":
		case !errors.As(err, &re) || re.Code != CodeInvalidRedirectURI || !strings.Contains(re.Description, tc.want):
			t.Errorf("%s: %v, want invalid_redirect_uri containing %q", body, err, tc.want)
		}
	}
}
