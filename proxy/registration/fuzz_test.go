package registration

import (
	"errors"
	"testing"
)

// FuzzDecode: the decoder of what any stranger may POST never panics,
// refuses with an *Error, and accepts only what the rules allow.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://localhost:3334/oauth/callback"],"client_name":"MCP CLI Client"}`,
		`{"redirect_uris":["com.example.app:/cb"],"application_type":"native"}`,
		`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":null,"grant_types":[1]}`,
		`[]`, `null`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Decode(body)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Code != CodeInvalidRedirectURI && re.Code != CodeInvalidClientMetadata {
				t.Fatalf("error %v is not a registration error", err)
			}
			return
		}
		if r.ApplicationType != Web && r.ApplicationType != Native {
			t.Fatalf("application_type %q", r.ApplicationType)
		}
		if len(r.RedirectURIs) == 0 || len(r.RedirectURIs) > MaxRedirectURIs {
			t.Fatalf("%d redirect URIs accepted", len(r.RedirectURIs))
		}
		for _, u := range r.RedirectURIs {
			if err := CheckRedirectURI(r.ApplicationType, u); err != nil {
				t.Fatalf("accepted %q: %v", u, err)
			}
		}
	})
}
