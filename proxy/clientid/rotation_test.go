package clientid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// docServer serves one client's metadata document, cached for an hour,
// and counts the fetches of each URL.
type docServer struct {
	mu      sync.Mutex
	doc     string
	fetches map[string]int
	jwks    int // status of the jwks_uri; 0: 200
}

func (d *docServer) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fetches[r.URL.String()]++
	h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=3600"}}
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		if d.jwks != 0 {
			return &http.Response{StatusCode: d.jwks, Status: "503 Service Unavailable", Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(d.doc)), Request: r}, nil
}

func publicJWK(t *testing.T, kid string) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const rotatingID = "https://client.example/pk.json"

func pkDocument(t *testing.T, jwks json.RawMessage) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"client_id": rotatingID, "client_name": "pk", "redirect_uris": []string{"https://client.example/cb"},
		"token_endpoint_auth_method": AuthPrivateKeyJWT, "jwks": jwks})
	return string(b)
}

// TestRotatedInlineKeyRefetchesTheDocument: a client that rotates the key
// in its document's jwks and signs with the new one is served on the next
// attempt, though the cached document is good for an hour: an unknown key
// id fetches the document again, at most once per JWKSRefetch.
func TestRotatedInlineKeyRefetchesTheDocument(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := &docServer{doc: pkDocument(t, publicJWK(t, "k1")), fetches: map[string]int{}}
	r := &Resolver{HTTP: &http.Client{Transport: ds}, Now: func() time.Time { return now }}
	ctx := context.Background()
	c, err := r.Resolve(ctx, rotatingID)
	if err != nil {
		t.Fatal(err)
	}
	ds.mu.Lock()
	ds.doc = pkDocument(t, publicJWK(t, "k2")) // the client rotates its key, at once
	ds.mu.Unlock()
	keys, err := r.Keys(ctx, c, "k2")
	if err != nil || len(keys) != 1 || keys[0].KeyID != "k2" {
		t.Fatalf("the rotated key: %v, %v", keys, err)
	}
	if c, _ = r.Resolve(ctx, rotatingID); c == nil || c.JWKS.Key("k2") == nil {
		t.Error("the refetched document is not the one served next")
	}
	for range 5 { // made-up key ids do not make it fetch on every assertion
		if keys, _ := r.Keys(ctx, c, "nope"); len(keys) != 0 {
			t.Fatalf("a made-up key id found %v", keys)
		}
	}
	if n := ds.fetches[rotatingID]; n != 2 {
		t.Errorf("the document was fetched %d times, want 2 (the first, and one refetch for k2)", n)
	}
	now = now.Add(JWKSRefetch)
	_, _ = r.Keys(ctx, c, "nope")
	if n := ds.fetches[rotatingID]; n != 3 {
		t.Errorf("after JWKSRefetch an unknown key id fetched the document %d times in all, want 3", n)
	}
}

// TestFailedJWKSFetchIsRemembered: a jwks_uri that fails is not fetched
// again within FailureCache, as a failing document is not.
func TestFailedJWKSFetchIsRemembered(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := &docServer{fetches: map[string]int{}, jwks: http.StatusServiceUnavailable}
	r := &Resolver{HTTP: &http.Client{Transport: ds}, Now: func() time.Time { return now }}
	c := &Client{ID: rotatingID, JWKSURI: "https://client.example/jwks"}
	for range 3 {
		var ce *Error
		if _, err := r.Keys(context.Background(), c, "k1"); !errors.As(err, &ce) {
			t.Fatalf("a failing jwks_uri: %v", err)
		}
	}
	if n := ds.fetches[c.JWKSURI]; n != 1 {
		t.Errorf("%d fetches of a failing jwks_uri within the failure cache, want 1", n)
	}
	now = now.Add(FailureCache)
	_, _ = r.Keys(context.Background(), c, "k1")
	if n := ds.fetches[c.JWKSURI]; n != 2 {
		t.Errorf("after the failure cache: %d fetches, want 2", n)
	}
}
