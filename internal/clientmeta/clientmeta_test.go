package clientmeta

import (
	"io"
	"net/http/httptest"
	"testing"
)

// A person trying the stack in a browser ends on the client's redirect
// URI and copies the code from it.
func TestCallbackShowsWhatTheAuthorizationServerSent(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler("client.example.net", "seed").ServeHTTP(rec, httptest.NewRequest("GET", "https://client.example.net/demo/callback?code=abc&state=xyz&iss=https%3A%2F%2Fmcp.example.com", nil))
	body, _ := io.ReadAll(rec.Body)
	if want := "code=abc\nstate=xyz\niss=https://mcp.example.com\n"; rec.Code != 200 || string(body) != want {
		t.Errorf("callback answered %d %q, want 200 %q", rec.Code, body, want)
	}
	rec = httptest.NewRecorder()
	Handler("client.example.net", "seed").ServeHTTP(rec, httptest.NewRequest("GET", "https://client.example.net/a/b/callback", nil))
	if rec.Code != 404 {
		t.Errorf("a nested path answered %d, want 404", rec.Code)
	}
}
