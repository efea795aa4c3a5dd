// Package hydralogin is the harness's login and consent app for Ory Hydra:
// Hydra sends the browser to it with a login or consent challenge, and it
// accepts the challenge through Hydra's admin API as the scenario's user,
// then sends the browser on to where Hydra says. It has no pages: the user
// of a scenario has already proved who they are at the operator's identity
// provider, and what the scenarios check is the proxy, not this app.
package hydralogin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// App is the login and consent app. Subject is whom every login is
// accepted as; Audience, when set, is granted as the access token's
// audience in addition to what the client requested (the policy of the
// remote server's operator: tokens for its MCP server).
type App struct {
	// AdminURL is Hydra's admin API, such as https://127.0.0.1:4445.
	AdminURL string
	// HTTP reaches the admin API.
	HTTP *http.Client

	mu       sync.Mutex
	subject  string
	audience []string
	logins   int
	consents int
}

// SetSubject sets whom logins are accepted as.
func (a *App) SetSubject(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subject = s
}

// SetAudience sets the audience every consent grants besides the
// requested one.
func (a *App) SetAudience(aud ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.audience = aud
}

// Counts returns how many logins and consents the app accepted.
func (a *App) Counts() (logins, consents int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logins, a.consents
}

// ServeHTTP implements http.Handler: /login and /consent.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		to  string
		err error
	)
	switch r.URL.Path {
	case "/login":
		to, err = a.login(r.Context(), r.URL.Query().Get("login_challenge"))
	case "/consent":
		to, err = a.consent(r.Context(), r.URL.Query().Get("consent_challenge"))
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "hydralogin: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

func (a *App) login(ctx context.Context, challenge string) (string, error) {
	if challenge == "" {
		return "", fmt.Errorf("no login_challenge")
	}
	a.mu.Lock()
	subject := a.subject
	a.mu.Unlock()
	if subject == "" {
		return "", fmt.Errorf("no subject to log in as")
	}
	to, err := a.put(ctx, "/admin/oauth2/auth/requests/login/accept", "login_challenge", challenge,
		map[string]any{"subject": subject, "remember": false})
	if err == nil {
		a.mu.Lock()
		a.logins++
		a.mu.Unlock()
	}
	return to, err
}

func (a *App) consent(ctx context.Context, challenge string) (string, error) {
	if challenge == "" {
		return "", fmt.Errorf("no consent_challenge")
	}
	var req struct {
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
	}
	if err := a.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/consent", "consent_challenge", challenge, nil, &req); err != nil {
		return "", err
	}
	a.mu.Lock()
	audience := append([]string{}, req.RequestedAudience...)
	for _, aud := range a.audience {
		if !contains(audience, aud) {
			audience = append(audience, aud)
		}
	}
	a.mu.Unlock()
	to, err := a.put(ctx, "/admin/oauth2/auth/requests/consent/accept", "consent_challenge", challenge, map[string]any{
		"grant_scope":                 req.RequestedScope,
		"grant_access_token_audience": audience,
		"remember":                    false,
	})
	if err == nil {
		a.mu.Lock()
		a.consents++
		a.mu.Unlock()
	}
	return to, err
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (a *App) put(ctx context.Context, path, param, challenge string, body any) (string, error) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.do(ctx, http.MethodPut, path, param, challenge, body, &out); err != nil {
		return "", err
	}
	if out.RedirectTo == "" {
		return "", fmt.Errorf("%s gave no redirect_to", path)
	}
	return out.RedirectTo, nil
}

func (a *App) do(ctx context.Context, method, path, param, challenge string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.AdminURL+path+"?"+url.Values{param: {challenge}}.Encode(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s answered %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}
