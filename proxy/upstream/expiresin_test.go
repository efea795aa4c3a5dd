package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestTokenResponsesTolerateStringExpiresIn: refresh and client
// credentials read expires_in as a number or a string, as the first code
// exchange (golang.org/x/oauth2) does.
func TestTokenResponsesTolerateStringExpiresIn(t *testing.T) {
	for _, body := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":3600}`,
		`{"access_token":"a","token_type":"Bearer","expires_in":"3600"}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		g := &Grant{TokenURL: srv.URL, ClientID: "c"}
		tok, err := g.Refresh(context.Background(), srv.Client(), "r", ClientAuth{}, now)
		if err != nil || !tok.Expiry.Equal(now.Add(time.Hour)) {
			t.Errorf("refresh of %s: %v, expiry %v", body, err, tok)
		}
		tok, err = g.ClientCredentials(context.Background(), srv.Client(), ClientAuth{Secret: "s"}, now)
		if err != nil || !tok.Expiry.Equal(now.Add(time.Hour)) {
			t.Errorf("client credentials of %s: %v, expiry %v", body, err, tok)
		}
		srv.Close()
	}
}
