package clientmeta

import (
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
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

// The kinds of document the names pick, and the keys a private_key_jwt
// client publishes: derived from the seed, the same each time, another
// for another seed or name.
func TestDocumentKindsAndKeys(t *testing.T) {
	h := Handler("client.example.net", "seed")
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://client.example.net"+path, nil))
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	if code, doc := get("/app/client-metadata.json"); code != 200 || doc["token_endpoint_auth_method"] != "none" || doc["jwks_uri"] != nil {
		t.Errorf("a public client: %d %v", code, doc)
	}
	code, doc := get("/connector-pkjwt/client-metadata.json")
	if code != 200 || doc["token_endpoint_auth_method"] != "private_key_jwt" || doc["jwks_uri"] != JWKSURL("client.example.net", "connector-pkjwt") {
		t.Errorf("a private_key_jwt client: %d %v", code, doc)
	}
	if code, _ := get("/app/jwks.json"); code != 404 {
		t.Errorf("a public client's jwks.json answered %d, want 404", code)
	}
	code, set := get("/connector-pkjwt/jwks.json")
	k, _ := SigningKey("seed", "connector-pkjwt")
	var want jose.JSONWebKeySet
	if keys, ok := set["keys"].([]any); !ok || code != 200 || len(keys) != 1 {
		t.Fatalf("jwks.json: %d %v", code, set)
	}
	b, _ := json.Marshal(set)
	if err := json.Unmarshal(b, &want); err != nil || !want.Keys[0].Key.(*ecdsa.PublicKey).Equal(&k.PublicKey) || want.Keys[0].KeyID != KeyID {
		t.Errorf("jwks.json does not publish the signing key: %v", err)
	}
	k2, _ := SigningKey("seed", "connector-pkjwt")
	other, _ := SigningKey("another seed", "connector-pkjwt")
	if !k.Equal(k2) || k.Equal(other) {
		t.Error("keys are not derived from the seed alone")
	}
	if _, doc := get("/loopback-24123/client-metadata.json"); doc["redirect_uris"].([]any)[0] != "http://127.0.0.1:24123/callback" {
		t.Errorf("loopback-24123: %v", doc)
	}
	if _, doc := get("/loopback-024123/client-metadata.json"); doc["redirect_uris"].([]any)[0] != RedirectURL("client.example.net", "loopback-024123") {
		t.Errorf("loopback-024123 is not a loopback client: %v", doc)
	}
	if code, _ := get("/refuse-nothing/client-metadata.json"); code != 404 {
		t.Errorf("an unknown refused document answered %d, want 404", code)
	}
	if _, doc := get("/refuse-javascript/client-metadata.json"); doc["redirect_uris"].([]any)[0] != "javascript:alert(document.domain)" {
		t.Errorf("refuse-javascript: %v", doc)
	}
}
