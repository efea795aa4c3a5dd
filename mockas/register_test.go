package mockas

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const dcrRedir = "https://client.example.net/dcr/cb"

// register posts a registration request: body is JSON-encoded unless it is
// a string, which is sent as is.
func (f *fixture) register(t *testing.T, method, contentType string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if s, ok := body.(string); ok {
		raw = []byte(s)
	} else {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, asIssuer+"/register", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("status %d, body %q is not JSON: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, m
}

func dcrFixture(t *testing.T) *fixture {
	return newFixture(t, func(c *Config) { c.EnableDCR = true }, nil)
}

// publicRegistration is what an MCP client sends.
func publicRegistration() map[string]any {
	return map[string]any{
		"redirect_uris":              []string{dcrRedir},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"client_name":                "DCR App",
		"scope":                      "openid files:read",
		"client_uri":                 "https://client.example.net/", // not understood: ignored (RFC 7591 §2)
	}
}

// TestDCRDisabled checks the default: no registration_endpoint, and
// /register answers 404 with a JSON error, records the attempt and stores
// nothing.
func TestDCRDisabled(t *testing.T) {
	f := newFixture(t, nil, nil)
	_, meta, err := getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := meta["registration_endpoint"]; ok {
		t.Fatalf("registration_endpoint advertised while DCR is off: %v", meta["registration_endpoint"])
	}
	before := f.s.stats()
	status, body := f.register(t, http.MethodPost, "application/json", publicRegistration())
	if status != http.StatusNotFound || body["error"] != "not_found" || !strings.Contains(body["error_description"].(string), "turned off") {
		t.Fatalf("got %d %v, want 404 not_found", status, body)
	}
	if diff := cmp.Diff(before, f.s.stats()); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
	if ev := lastEvent(f.s, "register"); ev.Status != http.StatusNotFound || ev.Detail["error"] != "not_found" {
		t.Errorf("register event %+v", ev)
	}
}

// TestDCRPublicClient registers a public client as an MCP client would and
// runs an authorization with it.
func TestDCRPublicClient(t *testing.T) {
	f := dcrFixture(t)
	_, meta, _ := getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
	if meta["registration_endpoint"] != asIssuer+"/register" {
		t.Fatalf("registration_endpoint %v", meta["registration_endpoint"])
	}
	status, body := f.register(t, http.MethodPost, "application/json; charset=utf-8", publicRegistration())
	if status != http.StatusCreated {
		t.Fatalf("got %d %v", status, body)
	}
	id, _ := body["client_id"].(string)
	if id == "" || strings.HasPrefix(strings.ToLower(id), "https://") {
		t.Fatalf("client_id %q: must be set and must not look like a metadata document URL", id)
	}
	want := map[string]any{
		"client_id":                  id,
		"client_id_issued_at":        float64(f.e.clock.Now().Unix()),
		"redirect_uris":              []any{dcrRedir},
		"token_endpoint_auth_method": "none",
		"grant_types":                []any{"authorization_code", "refresh_token"},
		"response_types":             []any{"code"},
		"client_name":                "DCR App",
		"scope":                      "openid files:read",
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("registration response (-want +got):\n%s", diff)
	}
	ev := lastEvent(f.s, "register")
	if ev.Status != http.StatusCreated || ev.Detail["client_id"] != id || ev.Params["client_name"] != "DCR App" || ev.Params["redirect_uris"] != dcrRedir || ev.Detail["client_secret"] != "" {
		t.Errorf("register event %+v", ev)
	}

	// The consent page names the client; the flow ends in tokens with a
	// refresh token, as registered.
	verifier, challenge := pkce("dcr")
	p, err := f.b.get(authURL(authParams(id, dcrRedir, challenge)))
	if err != nil {
		t.Fatal(err)
	}
	p, err = f.b.login(p, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"DCR App", id, dcrRedir, "files:read"} {
		if !strings.Contains(p.body, s) {
			t.Errorf("consent page lacks %q", s)
		}
	}
	p, err = f.b.decide(p, "approve")
	if err != nil {
		t.Fatal(err)
	}
	v := exchange(p.location().Query().Get("code"), verifier)
	v.Set("client_id", id)
	v.Set("redirect_uri", dcrRedir)
	status, tok := f.token(t, v, "", "")
	if status != http.StatusOK || tok["refresh_token"] == nil {
		t.Fatalf("token: %d %v", status, tok)
	}
	if c := checkAccessToken(t, f.e, tok["access_token"].(string)); c.ClientID != id || c.Subject != "alice" {
		t.Errorf("claims %+v", c)
	}
}

// TestDCRConfidentialClient registers confidential clients: the secret
// works with the registered method only, the RFC 7591 defaults apply
// (client_secret_basic, authorization_code only: no refresh token), and a
// client that registered client_credentials may use it.
func TestDCRConfidentialClient(t *testing.T) {
	f := dcrFixture(t)
	reg := func(change func(map[string]any)) (string, string) {
		t.Helper()
		m := publicRegistration()
		change(m)
		status, body := f.register(t, http.MethodPost, "application/json", m)
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, body)
		}
		secret, _ := body["client_secret"].(string)
		if secret == "" || body["client_secret_expires_at"] != float64(0) {
			t.Fatalf("no client_secret or client_secret_expires_at 0: %v", body)
		}
		if ev := lastEvent(f.s, "register"); ev.Detail["client_secret"] == "" || strings.Contains(ev.Detail["client_secret"], secret) {
			t.Fatalf("register event must hold the secret's fingerprint only: %+v", ev)
		}
		return body["client_id"].(string), secret
	}
	codeFor := func(id string) (string, string) {
		verifier, challenge := pkce("dcr-conf" + id)
		cb, err := f.b.authorizeAll(authURL(authParams(id, dcrRedir, challenge)), "alice", "alice-password")
		if err != nil {
			t.Fatal(err)
		}
		return cb.Query().Get("code"), verifier
	}
	exchangeFor := func(code, verifier string) url.Values {
		v := exchange(code, verifier)
		v.Del("client_id")
		v.Set("redirect_uri", dcrRedir)
		return v
	}

	t.Run("defaults: client_secret_basic, no refresh token", func(t *testing.T) {
		id, secret := reg(func(m map[string]any) {
			delete(m, "token_endpoint_auth_method")
			delete(m, "grant_types")
			delete(m, "response_types")
		})
		code, verifier := codeFor(id)
		v := exchangeFor(code, verifier)
		v.Set("client_id", id)
		v.Set("client_secret", secret)
		if status, b := f.token(t, v, "", ""); status != http.StatusUnauthorized || !strings.Contains(b["error_description"].(string), "registered token_endpoint_auth_method client_secret_basic") {
			t.Fatalf("client_secret_post for a client_secret_basic client: %d %v", status, b)
		}
		status, b := f.token(t, exchangeFor(code, verifier), id, secret)
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, b)
		}
		if _, ok := b["refresh_token"]; ok {
			t.Errorf("refresh token issued to a client whose grant_types default to authorization_code")
		}
		if status, b := f.token(t, ccRequest(), id, secret); status != 400 || b["error"] != "unauthorized_client" {
			t.Errorf("client_credentials without registering it: %d %v", status, b)
		}
	})
	t.Run("client_secret_post and client_credentials", func(t *testing.T) {
		id, secret := reg(func(m map[string]any) {
			m["token_endpoint_auth_method"] = "client_secret_post"
			m["grant_types"] = []string{"authorization_code", "refresh_token", "client_credentials"}
		})
		v := ccRequest()
		v.Set("client_id", id)
		v.Set("client_secret", secret)
		status, b := f.token(t, v, "", "")
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d %v", status, b)
		}
		if c := checkAccessToken(t, f.e, b["access_token"].(string)); c.Subject != id {
			t.Errorf("sub %q, want %q", c.Subject, id)
		}
		if status, _ := f.token(t, ccRequest(), id, secret); status != http.StatusUnauthorized {
			t.Errorf("basic for a client_secret_post client: %d", status)
		}
	})
	t.Run("client_credentials only, no redirect URIs", func(t *testing.T) {
		id, secret := reg(func(m map[string]any) {
			m["grant_types"] = []string{"client_credentials"}
			m["token_endpoint_auth_method"] = "client_secret_basic"
			delete(m, "redirect_uris")
			delete(m, "response_types")
		})
		if status, b := f.token(t, ccRequest(), id, secret); status != http.StatusOK {
			t.Fatalf("%d %v", status, b)
		}
		_, challenge := pkce("x")
		if p := f.get(t, authURL(authParams(id, dcrRedir, challenge))); p.status != http.StatusBadRequest {
			t.Fatalf("authorization for a client without redirect URIs: %d", p.status)
		}
	})
	t.Run("loopback http redirect URI", func(t *testing.T) {
		m := publicRegistration()
		m["redirect_uris"] = []string{"http://127.0.0.1:33418/callback", "http://localhost/cb"}
		if status, b := f.register(t, http.MethodPost, "application/json", m); status != http.StatusCreated {
			t.Fatalf("%d %v", status, b)
		}
	})
}

// TestDCRRefusals sends one bad registration per case: the exact RFC 7591
// error, a register event naming it, nothing registered.
func TestDCRRefusals(t *testing.T) {
	f := dcrFixture(t)
	with := func(change func(map[string]any)) map[string]any {
		m := publicRegistration()
		change(m)
		return m
	}
	for _, tc := range []struct {
		name       string
		method, ct string
		body       any
		status     int
		code, desc string
	}{
		{"redirect URI over http", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{"http://client.example.net/cb"} }), 400, "invalid_redirect_uri", "must be https, or http on localhost"},
		{"redirect URI with a fragment", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{dcrRedir + "#f"} }), 400, "invalid_redirect_uri", "fragment"},
		{"redirect URI relative", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{"/cb"} }), 400, "invalid_redirect_uri", "not an absolute URL"},
		{"redirect URI custom scheme", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{"com.example.app:/cb"} }), 400, "invalid_redirect_uri", "redirect_uris[0]"},
		{"second redirect URI bad", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{dcrRedir, "http://evil.example/cb"} }), 400, "invalid_redirect_uri", "redirect_uris[1]"},
		{"redirect_uris missing", "", "", with(func(m map[string]any) { delete(m, "redirect_uris") }), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"redirect_uris empty", "", "", with(func(m map[string]any) { m["redirect_uris"] = []string{} }), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"redirect_uris a string", "", "", with(func(m map[string]any) { m["redirect_uris"] = dcrRedir }), 400, "invalid_client_metadata", "redirect_uris is not an array of strings"},
		{"auth method private_key_jwt", "", "", with(func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }), 400, "invalid_client_metadata", `"private_key_jwt" is not supported`},
		{"auth method client_secret_jwt", "", "", with(func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" }), 400, "invalid_client_metadata", `"client_secret_jwt" is not supported`},
		{"auth method a number", "", "", with(func(m map[string]any) { m["token_endpoint_auth_method"] = 1 }), 400, "invalid_client_metadata", "token_endpoint_auth_method is not a string"},
		{"grant type password", "", "", with(func(m map[string]any) { m["grant_types"] = []string{"authorization_code", "password"} }), 400, "invalid_client_metadata", `grant type "password" is not supported`},
		{"grant type implicit", "", "", with(func(m map[string]any) { m["grant_types"] = []string{"implicit"} }), 400, "invalid_client_metadata", `grant type "implicit" is not supported`},
		{"grant_types empty", "", "", with(func(m map[string]any) { m["grant_types"] = []string{} }), 400, "invalid_client_metadata", "grant_types is empty"},
		{"refresh_token alone", "", "", with(func(m map[string]any) { m["grant_types"] = []string{"refresh_token"} }), 400, "invalid_client_metadata", "refresh_token without authorization_code"},
		{"client_credentials for a public client", "", "", with(func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} }), 400, "invalid_client_metadata", "needs a confidential client"},
		{"response type token", "", "", with(func(m map[string]any) { m["response_types"] = []string{"token"} }), 400, "invalid_client_metadata", `response type "token" is not supported`},
		{"response_types empty", "", "", with(func(m map[string]any) { m["response_types"] = []string{} }), 400, "invalid_client_metadata", "response_types must contain code"},
		{"response code without the code grant", "", "", with(func(m map[string]any) {
			m["grant_types"] = []string{"client_credentials"}
			m["token_endpoint_auth_method"] = "client_secret_basic"
		}), 400, "invalid_client_metadata", "grant_types lacks authorization_code"},
		{"scope not supported", "", "", with(func(m map[string]any) { m["scope"] = "admin" }), 400, "invalid_client_metadata", `scope "admin" is not supported`},
		{"client_name a number", "", "", with(func(m map[string]any) { m["client_name"] = 7 }), 400, "invalid_client_metadata", "client_name is not a string"},
		{"body not JSON", "", "", "redirect_uris=x", 400, "invalid_client_metadata", "not a JSON object"},
		{"body an array", "", "", "[]", 400, "invalid_client_metadata", "not a JSON object"},
		{"body null", "", "", "null", 400, "invalid_client_metadata", "not a JSON object"},
		{"body two objects", "", "", `{"redirect_uris":["` + dcrRedir + `"]}{}`, 400, "invalid_client_metadata", "not a JSON object"},
		{"form content type", "", "application/x-www-form-urlencoded", publicRegistration(), 400, "invalid_client_metadata", "must be application/json"},
		{"no content type", "", "-", publicRegistration(), 400, "invalid_client_metadata", "must be application/json"},
		{"GET", http.MethodGet, "", "", 405, "invalid_request", "POST only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, ct := tc.method, tc.ct
			if method == "" {
				method = http.MethodPost
			}
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			before := f.s.stats()
			status, body := f.register(t, method, ct, tc.body)
			desc, _ := body["error_description"].(string)
			if status != tc.status || body["error"] != tc.code || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %d %v, want %d %s containing %q", status, body, tc.status, tc.code, tc.desc)
			}
			if _, ok := body["client_id"]; ok {
				t.Fatal("an error response carries a client_id")
			}
			if diff := cmp.Diff(before, f.s.stats()); diff != "" {
				t.Errorf("a refused registration changed the state (-before +after):\n%s", diff)
			}
			if ev := lastEvent(f.s, "register"); ev.Status != tc.status || ev.Detail["error"] != tc.code || ev.Detail["client_id"] != "" {
				t.Errorf("register event %+v", ev)
			}
		})
	}
}
