package hydralogin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// fakeAdmin answers the three admin calls the app makes, as Hydra does,
// and keeps what the app accepted.
type fakeAdmin struct {
	login, consent map[string]any
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "PUT /admin/oauth2/auth/requests/login/accept":
		_ = json.NewDecoder(r.Body).Decode(&f.login)
		_ = json.NewEncoder(w).Encode(map[string]string{"redirect_to": "https://auth.example/oauth2/auth?login_verifier=" + r.URL.Query().Get("login_challenge")})
	case "GET /admin/oauth2/auth/requests/consent":
		_ = json.NewEncoder(w).Encode(map[string]any{"requested_scope": []string{"offline_access"}, "requested_access_token_audience": []string{"mcp-server"}})
	case "PUT /admin/oauth2/auth/requests/consent/accept":
		_ = json.NewDecoder(r.Body).Decode(&f.consent)
		_ = json.NewEncoder(w).Encode(map[string]string{"redirect_to": "https://auth.example/oauth2/auth?consent_verifier=v"})
	default:
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	}
}

func TestAcceptsAsTheSubjectAndGrantsTheAudience(t *testing.T) {
	admin := &fakeAdmin{}
	as := httptest.NewServer(admin)
	defer as.Close()
	app := &App{AdminURL: as.URL, HTTP: as.Client()}
	app.SetSubject("alice")
	app.SetAudience("https://remote-mcp.provider.com/mcp", "mcp-server")

	for _, tt := range []struct{ path, wantLocation string }{
		{"/login?login_challenge=c1", "https://auth.example/oauth2/auth?login_verifier=c1"},
		{"/consent?consent_challenge=c2", "https://auth.example/oauth2/auth?consent_verifier=v"},
	} {
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != tt.wantLocation {
			t.Errorf("%s: %d to %q, want 302 to %q (%s)", tt.path, rec.Code, rec.Header().Get("Location"), tt.wantLocation, rec.Body)
		}
	}
	if admin.login["subject"] != "alice" {
		t.Errorf("login accepted as %v", admin.login["subject"])
	}
	var aud []string
	for _, a := range admin.consent["grant_access_token_audience"].([]any) {
		aud = append(aud, a.(string))
	}
	if !slices.Equal(aud, []string{"mcp-server", "https://remote-mcp.provider.com/mcp"}) {
		t.Errorf("granted audience %v", aud)
	}
	if l, c := app.Counts(); l != 1 || c != 1 {
		t.Errorf("counts %d logins, %d consents", l, c)
	}

	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("a login without a challenge: %d, want 502", rec.Code)
	}
}
