package clientid

import (
	"net/url"
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
