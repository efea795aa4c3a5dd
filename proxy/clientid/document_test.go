package clientid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// docs is a fake client host: path → JSON body.
type docs struct {
	m map[string]string
	n atomic.Int32 // fetches
}

func (d *docs) RoundTrip(r *http.Request) (*http.Response, error) {
	d.n.Add(1)
	body, ok := d.m[r.URL.Path]
	status := 200
	if !ok {
		status = 404
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func doc(id string, fields map[string]any) string {
	m := map[string]any{"client_id": id, "client_name": "app", "redirect_uris": []string{"https://client.test/cb"}}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func publicJWKS(t *testing.T) (*ecdsa.PrivateKey, jose.JSONWebKeySet) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
}

// TestDocumentChecks: what a document may say about its redirect URIs,
// application type and client authentication, each refusal with its
// reason.
func TestDocumentChecks(t *testing.T) {
	priv, set := publicJWKS(t)
	privSet := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "k1", Algorithm: "ES256"}}}
	const id = "https://client.test/app.json"
	for _, tc := range []struct {
		name   string
		fields map[string]any
		want   string // "" accepted
		check  func(*Client) bool
	}{
		{"public by default", nil, "", func(c *Client) bool { return c.AuthMethod == AuthNone && !c.Native }},
		{"public", map[string]any{"token_endpoint_auth_method": "none"}, "", func(c *Client) bool { return c.AuthMethod == AuthNone }},
		{"private_key_jwt with jwks_uri", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.test/jwks.json"}, "",
			func(c *Client) bool {
				return c.AuthMethod == AuthPrivateKeyJWT && c.JWKSURI == "https://client.test/jwks.json"
			}},
		{"private_key_jwt with jwks", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": set}, "",
			func(c *Client) bool { return c.AuthMethod == AuthPrivateKeyJWT && len(c.JWKS.Keys) == 1 }},
		{"native with a private-use scheme", map[string]any{"application_type": "native", "redirect_uris": []string{"com.example.app:/cb", "http://127.0.0.1/cb"}}, "",
			func(c *Client) bool { return c.Native }},
		{"neither jwks nor jwks_uri", map[string]any{"token_endpoint_auth_method": "private_key_jwt"}, "asks for private_key_jwt but has neither jwks nor jwks_uri", nil},
		{"both jwks and jwks_uri", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": set, "jwks_uri": "https://client.test/jwks.json"}, "has both jwks and jwks_uri", nil},
		{"a private key in jwks", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": privSet}, "is a private or symmetric key", nil},
		{"empty jwks", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": map[string]any{"keys": []any{}}}, "jwks has no keys", nil},
		{"http jwks_uri", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://client.test/jwks.json"}, "jwks_uri must be an https URL", nil},
		{"client_secret_jwt", map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}, "a shared secret", nil},
		{"tls_client_auth", map[string]any{"token_endpoint_auth_method": "tls_client_auth"}, `token_endpoint_auth_method "tls_client_auth" is not supported`, nil},
		{"unknown application_type", map[string]any{"application_type": "desktop"}, `application_type "desktop"`, nil},
		{"javascript redirect", map[string]any{"redirect_uris": []string{"https://client.test/cb", "javascript:alert(1)"}}, `redirect_uris[1] uses the scheme "javascript"`, nil},
		{"private-use scheme on a web client", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}, "only native clients", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{HTTP: &http.Client{Transport: &docs{m: map[string]string{"/app.json": doc(id, tc.fields)}}}}
			c, err := r.Resolve(context.Background(), id)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && !tc.check(c):
				t.Fatalf("accepted as %+v", c)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestKeysFromJWKSURI: the keys at jwks_uri are fetched once and cached;
// an unknown key id refetches them, at most once per JWKSRefetch.
func TestKeysFromJWKSURI(t *testing.T) {
	_, set := publicJWKS(t)
	b, _ := json.Marshal(set)
	d := &docs{m: map[string]string{"/jwks.json": string(b)}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Resolver{HTTP: &http.Client{Transport: d}, Now: func() time.Time { return now }}
	c := &Client{ID: "https://client.test/app.json", AuthMethod: AuthPrivateKeyJWT, JWKSURI: "https://client.test/jwks.json"}
	ctx := context.Background()
	for range 3 {
		if keys, err := r.Keys(ctx, c, "k1"); err != nil || len(keys) != 1 {
			t.Fatalf("Keys(k1) = %v, %v", keys, err)
		}
	}
	if n := d.n.Load(); n != 1 {
		t.Fatalf("%d fetches for a cached set, want 1", n)
	}
	for range 3 {
		if keys, err := r.Keys(ctx, c, "unknown"); err != nil || len(keys) != 0 {
			t.Fatalf("Keys(unknown) = %v, %v", keys, err)
		}
	}
	if n := d.n.Load(); n != 1 {
		t.Fatalf("%d fetches: an unknown kid refetched within JWKSRefetch of the fetch", n)
	}
	now = now.Add(JWKSRefetch)
	for range 3 {
		_, _ = r.Keys(ctx, c, "unknown")
	}
	if n := d.n.Load(); n != 2 {
		t.Fatalf("%d fetches: after JWKSRefetch an unknown kid refetches once, want 2", n)
	}
	d.m["/jwks.json"] = `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`
	r2 := &Resolver{HTTP: &http.Client{Transport: d}}
	if _, err := r2.Keys(ctx, c, ""); err == nil || !strings.Contains(err.Error(), "private or symmetric key") {
		t.Fatalf("a symmetric key at jwks_uri: %v", err)
	}
}
