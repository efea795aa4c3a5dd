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

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		appType, uri string
		ok           bool
	}{
		{Web, "https://app.example.net/cb", true},
		{Web, "http://app.example.net/cb", false},
		{Web, "https://localhost/cb", false},
		{Web, "https://127.0.0.1/cb", false},
		{Web, "http://127.0.0.1:8080/cb", false},
		{Web, "com.example.app:/cb", false},
		{Native, "http://127.0.0.1:8080/cb", true},
		{Native, "http://127.0.0.1/cb", true},
		{Native, "http://[::1]:1/cb", true},
		{Native, "http://localhost:3334/oauth/callback", true},
		{Native, "http://LOCALHOST:3334/cb", true},
		{Native, "http://127.0.0.2:8080/cb", false},
		{Native, "http://localhost.evil.example/cb", false},
		{Native, "http://10.0.0.1/cb", false},
		{Native, "com.example.app:/cb", true},
		{Native, "myapp:/cb", false},
		{Native, "https://app.example.net/cb", true},
		{Native, "javascript:alert(1)", false},
		{Native, "JavaScript:alert(1)", false},
		{Native, "data:text/html,x", false},
		{Native, "file:///etc/passwd", false},
		{Native, "https://app.example.net/cb#frag", false},
		{Native, "https://app.example.net/cb#", false},
		{Native, "https://user@app.example.net/cb", false},
		{Native, "http://user:pw@127.0.0.1/cb", false},
		{Native, "/relative", false},
		{Native, "https:///nohost", false},
	} {
		err := CheckRedirectURI(tc.appType, tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: err = %v, want ok = %v", tc.appType, tc.uri, err, tc.ok)
		}
	}
}

func TestBoundedCutsOnACharacter(t *testing.T) {
	if got := bounded("ééé", 3); got != "é…" {
		t.Errorf("bounded = %q", got)
	}
	if got := bounded("abc", 3); got != "abc" {
		t.Errorf("bounded = %q", got)
	}
}
