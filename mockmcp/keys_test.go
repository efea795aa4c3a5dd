package mockmcp

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestKeyRotationRefetchesOnce(t *testing.T) {
	e := newEnv(t)
	if resp, _ := e.post("Bearer "+e.valid(), initializeBody); resp.StatusCode != 200 {
		t.Fatalf("first token: %d", resp.StatusCode)
	}
	if got := e.as.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}
	// The AS rotates to a new key: the unknown kid causes one refetch.
	next := newECKey(t, "key-2")
	e.as.addKey(next)
	if resp, b := e.post("Bearer "+mint(t, next, e.claims()), initializeBody); resp.StatusCode != 200 {
		t.Fatalf("token from the rotated key: %d %s", resp.StatusCode, b)
	}
	if got := e.as.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times after rotation, want 2", got)
	}
	// Cached now: more tokens from either key cost no fetch.
	e.post("Bearer "+mint(t, next, e.claims()), initializeBody)
	e.post("Bearer "+e.valid(), initializeBody)
	if got := e.as.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want still 2", got)
	}
	if got := e.as.metadataHits.Load(); got != 1 {
		t.Errorf("metadata fetched %d times, want 1", got)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	e := newEnv(t)
	e.post("Bearer "+e.valid(), initializeBody) // warm the cache
	e.clock.Advance(jwksRefetchInterval)
	for i := range 20 {
		rogue := &signingKey{kid: fmt.Sprintf("made-up-%d", i), alg: jose.RS256, priv: e.key.priv}
		resp, _ := e.post("Bearer "+mint(t, rogue, e.claims()), initializeBody)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %d with an unknown kid: %d", i, resp.StatusCode)
		}
	}
	if got := e.as.jwksHits.Load(); got != 2 {
		t.Errorf("20 unknown kids caused %d JWKS fetches in all, want 2 (warm-up + one refetch)", got)
	}
	e.clock.Advance(jwksRefetchInterval)
	rogue := &signingKey{kid: "made-up-late", alg: jose.RS256, priv: e.key.priv}
	e.post("Bearer "+mint(t, rogue, e.claims()), initializeBody)
	if got := e.as.jwksHits.Load(); got != 3 {
		t.Errorf("after the interval: %d JWKS fetches, want 3", got)
	}
}

func TestJWKSRefreshedWhenOld(t *testing.T) {
	e := newEnv(t)
	e.post("Bearer "+e.valid(), initializeBody)
	e.clock.Advance(jwksMaxAge)
	if resp, _ := e.post("Bearer "+e.valid(), initializeBody); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.as.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 after %s", got, jwksMaxAge)
	}
}

func TestOIDCDiscoveryFallback(t *testing.T) {
	e := newEnv(t, func(_ *Config, as *testAS) { as.oidcOnly = true })
	if resp, b := e.post("Bearer "+e.valid(), initializeBody); resp.StatusCode != 200 {
		t.Fatalf("token from an OIDC-only AS: %d %s", resp.StatusCode, b)
	}
}

func TestMetadataIssuerMismatch(t *testing.T) {
	e := newEnv(t, func(_ *Config, as *testAS) { as.metadataIssuer = "https://evil.example.com" })
	resp, b := e.post("Bearer "+e.valid(), initializeBody)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, challenge %q, want 503 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if !strings.Contains(string(b), `names issuer \"https://evil.example.com\", want \"https://auth.provider.com\"`) {
		t.Errorf("body %s does not explain the issuer mismatch", b)
	}
	// The failure is remembered for a moment, then retried.
	hits := e.as.metadataHits.Load()
	e.post("Bearer "+e.valid(), initializeBody)
	if got := e.as.metadataHits.Load(); got != hits {
		t.Errorf("retried within the backoff: %d metadata fetches, want %d", got, hits)
	}
	e.clock.Advance(fetchFailureBackoff)
	e.post("Bearer "+e.valid(), initializeBody)
	if got := e.as.metadataHits.Load(); got != hits+1 {
		t.Errorf("after the backoff: %d metadata fetches, want %d", got, hits+1)
	}
}

func TestMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://auth.provider.com", []string{
			"https://auth.provider.com/.well-known/oauth-authorization-server",
			"https://auth.provider.com/.well-known/openid-configuration",
		}},
		{"https://auth.provider.com/tenant1", []string{
			"https://auth.provider.com/.well-known/oauth-authorization-server/tenant1",
			"https://auth.provider.com/.well-known/openid-configuration/tenant1",
			"https://auth.provider.com/tenant1/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		got, err := metadataURLs(tt.issuer)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("metadataURLs(%s)\n got: %v\nwant: %v", tt.issuer, got, tt.want)
		}
	}
}

func TestSecondIssuer(t *testing.T) {
	other := &testAS{issuer: "https://idp.example.com"}
	otherKey := newECKey(t, "idp-key")
	other.addKey(otherKey)
	e := newEnv(t, func(c *Config, _ *testAS) {
		c.AuthorizationServers = append(c.AuthorizationServers, "https://idp.example.com")
	})
	e.serve("idp.example.com", other)
	c := e.claims()
	c["iss"] = "https://idp.example.com"
	if resp, b := e.post("Bearer "+mint(t, otherKey, c), initializeBody); resp.StatusCode != 200 {
		t.Fatalf("token from the second AS: %d %s", resp.StatusCode, b)
	}
	// A token naming one AS but signed with the other's key is refused.
	resp, b := e.post("Bearer "+mint(t, e.key, c), initializeBody)
	if err := checkRefused(resp, b, invalidToken("no key with kid key-1 in the JWKS of https://idp.example.com")); err != nil {
		t.Error(err)
	}
}
