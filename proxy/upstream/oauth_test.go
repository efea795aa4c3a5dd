package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// tokenServer answers every POST with status and body, and records the
// forms it received.
type tokenServer struct {
	*httptest.Server
	mu    sync.Mutex
	forms []url.Values
}

func newTokenServer(t *testing.T, status int, body string) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		ts.mu.Lock()
		ts.forms = append(ts.forms, r.PostForm)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) last() url.Values {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.forms[len(ts.forms)-1]
}

const okToken = `{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}`

func TestGrantAudienceAndResource(t *testing.T) {
	tests := []struct {
		name         string
		grant        Grant
		wantResource string // "" = absent
		wantAudience string // "" = absent
	}{
		{"resource only (RFC 8707)", Grant{Resource: "https://remote-mcp.provider.com/mcp"}, "https://remote-mcp.provider.com/mcp", ""},
		{"audience added (Ory Hydra)", Grant{Resource: "https://remote-mcp.provider.com/mcp", Audience: []string{"https://remote-mcp.provider.com/mcp", "mcp-server"}},
			"https://remote-mcp.provider.com/mcp", "https://remote-mcp.provider.com/mcp mcp-server"},
		{"resource omitted (Entra ID)", Grant{Resource: "https://remote-mcp.provider.com/mcp", OmitResource: true}, "", ""},
		{"audience instead of resource", Grant{Resource: "https://remote-mcp.provider.com/mcp", OmitResource: true, Audience: []string{"api://mcp"}}, "", "api://mcp"},
	}
	check := func(t *testing.T, what string, v url.Values, wantResource, wantAudience string) {
		t.Helper()
		if _, ok := v["resource"]; ok != (wantResource != "") || v.Get("resource") != wantResource {
			t.Errorf("%s: resource = %q (present %v), want %q", what, v.Get("resource"), ok, wantResource)
		}
		if _, ok := v["audience"]; ok != (wantAudience != "") || v.Get("audience") != wantAudience {
			t.Errorf("%s: audience = %q (present %v), want %q", what, v.Get("audience"), ok, wantAudience)
		}
	}
	ctx := context.Background()
	now := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, http.StatusOK, okToken)
			g := tt.grant
			g.AuthURL, g.TokenURL, g.ClientID = "https://auth.provider.com/oauth2/auth", ts.URL+"/token", "mcp-proxy"

			u, err := url.Parse(g.AuthCodeURL("https://mcp.example.com/cb", "state", "verifier-verifier-verifier-verifier-0123"))
			if err != nil {
				t.Fatal(err)
			}
			check(t, "AuthCodeURL", u.Query(), tt.wantResource, tt.wantAudience)
			if u.Query().Get("code_challenge_method") != "S256" {
				t.Error("AuthCodeURL lost PKCE")
			}

			if _, err := g.Exchange(ctx, ts.Client(), "https://mcp.example.com/cb", "code", "verifier", ClientAuth{}); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			check(t, "Exchange", ts.last(), tt.wantResource, tt.wantAudience)

			if _, err := g.Refresh(ctx, ts.Client(), "rt", ClientAuth{}, now); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			check(t, "Refresh", ts.last(), tt.wantResource, tt.wantAudience)
			if ts.last().Get("grant_type") != "refresh_token" || ts.last().Get("refresh_token") != "rt" {
				t.Errorf("Refresh sent %v", ts.last())
			}

			if _, err := g.ClientCredentials(ctx, ts.Client(), ClientAuth{Secret: "secret"}, now); err != nil {
				t.Fatalf("ClientCredentials: %v", err)
			}
			check(t, "ClientCredentials", ts.last(), tt.wantResource, tt.wantAudience)
		})
	}
}

// TestTokenErrorsAreRedacted: a token endpoint's refusal or failure keeps
// its type (IsRefused still reads it) but quotes no credential.
func TestTokenErrorsAreRedacted(t *testing.T) {
	const secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	tests := []struct {
		name    string
		status  int
		body    string
		refused bool
	}{
		{"500 echoing a token answer", http.StatusInternalServerError, `{"access_token":"` + secret + `","refresh_token":"ory_rt_leaked-refresh"}`, false},
		{"400 whose description quotes the refresh token", http.StatusBadRequest, `{"error":"invalid_grant","error_description":"refresh_token=ory_rt_leaked-refresh was already used; id_token ` + secret + `"}`, true},
		{"401 with a text body", http.StatusUnauthorized, `client_secret: ory_rt_leaked-refresh`, true},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.status, tt.body)
			g := Grant{TokenURL: ts.URL + "/token", AuthURL: ts.URL + "/auth", ClientID: "c", Resource: "https://r.example/mcp"}
			calls := map[string]func() error{
				"Exchange": func() error {
					_, err := g.Exchange(ctx, ts.Client(), "https://mcp.example.com/cb", "code", "v", ClientAuth{})
					return err
				},
				"Refresh": func() error { _, err := g.Refresh(ctx, ts.Client(), "rt", ClientAuth{}, time.Now()); return err },
				"ClientCredentials": func() error {
					_, err := g.ClientCredentials(ctx, ts.Client(), ClientAuth{Secret: "s"}, time.Now())
					return err
				},
			}
			for name, call := range calls {
				err := call()
				if err == nil {
					t.Fatalf("%s succeeded", name)
				}
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) {
					t.Errorf("%s: %T is not an *oauth2.RetrieveError", name, err)
				}
				if IsRefused(err) != tt.refused {
					t.Errorf("%s: IsRefused = %v", name, !tt.refused)
				}
				for _, s := range []string{secret, "leaked-refresh", "c2lnbmF0dXJl"} {
					if strings.Contains(err.Error(), s) || strings.Contains(string(re.Body), s) || strings.Contains(re.ErrorDescription, s) {
						t.Errorf("%s: the error shows %s: %v", name, s, err)
					}
				}
			}
		})
	}
}
