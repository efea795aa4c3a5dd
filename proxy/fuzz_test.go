package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenRequest: whatever form reaches the token endpoint, the answer
// is a token only for the one right request, else an OAuth error body
// (RFC 6749 §5.2) with a 4xx, and a refused request never consumes the
// code.
func FuzzTokenRequest(f *testing.F) {
	f.Add(good().Encode())
	f.Add("grant_type=authorization_code&code=the-code")
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=" + url.QueryEscape(testClient))
	f.Add("grant_type=password&username=a&password=b")
	f.Add("%zz&&==")
	f.Fuzz(func(t *testing.T, body string) {
		p, now := newTestProxy(t, "")
		seedCode(t, p, "the-code", *now)
		r := httptest.NewRequest(http.MethodPost, "https://mcp.test/.mcp-proxy/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := do(p, r)
		if rec.Code == http.StatusOK {
			form, _ := url.ParseQuery(body)
			for k, v := range good() {
				if form.Get(k) != v[0] && !(k == "resource" && form.Get(k) == "") {
					t.Fatalf("a token for a request whose %s is %q: %s", k, form.Get(k), body)
				}
			}
			return
		}
		var e tokenError
		if rec.Code < 400 || rec.Code > 499 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" || e.RequestID == "" {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if rec := do(p, tokenRequest(good())); rec.Code != http.StatusOK {
			t.Fatalf("after the refused %q the good request got %d %s", body, rec.Code, rec.Body)
		}
	})
}

// FuzzAuthorizeRequest: no authorization request makes the proxy fail
// (5xx) or send the browser anywhere while the client is unknown: the test
// proxy can fetch no client metadata document, so every request is
// answered on the proxy's own page.
func FuzzAuthorizeRequest(f *testing.F) {
	f.Add("client_id=" + url.QueryEscape(testClient) + "&redirect_uri=" + url.QueryEscape(testRedirect) + "&response_type=code&code_challenge=abc&code_challenge_method=S256")
	f.Add("client_id=javascript:alert(1)&redirect_uri=javascript:alert(1)&response_type=token")
	f.Add("client_id=https://u:p@client.test/x&redirect_uri=data:text/html,x")
	f.Add("")
	f.Fuzz(func(t *testing.T, query string) {
		p, _ := newTestProxy(t, "")
		r, err := http.NewRequest(http.MethodGet, "https://mcp.test/.mcp-proxy/authorize?"+query, nil)
		if err != nil {
			return
		}
		rec := do(p, r)
		if rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("%q: %d Location=%q %s", query, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	})
}
