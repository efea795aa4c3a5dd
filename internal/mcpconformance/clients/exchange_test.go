package clients

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestExchangeAdapterReplacesOnlyTheSubjectToken: the identity provider
// behind the adapter gets the scenario's ID token as subject_token and
// everything else as the proxy sent it; the answer comes back unchanged.
func TestExchangeAdapterReplacesOnlyTheSubjectToken(t *testing.T) {
	var got url.Values
	var auth string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, auth = r.PostForm, r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
	}))
	t.Cleanup(idp.Close)
	a, err := startExchangeAdapter(idp.URL+"/token", "the-scenarios-id-token")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	sent := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"alices-id-token"},
		"audience": {"https://as.test"}, "resource": {"https://rs.test/mcp"}, "client_id": {"c"}}
	req, _ := http.NewRequest(http.MethodPost, a.URL, strings.NewReader(sent.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("c", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want the identity provider's 400", resp.StatusCode)
	}
	want := url.Values{}
	for k, v := range sent {
		want[k] = v
	}
	want.Set("subject_token", "the-scenarios-id-token")
	if got.Encode() != want.Encode() {
		t.Errorf("the identity provider got\n %s\nwant\n %s", got.Encode(), want.Encode())
	}
	if !strings.HasPrefix(auth, "Basic ") {
		t.Errorf("Authorization = %q, want the proxy's Basic client authentication", auth)
	}
}
