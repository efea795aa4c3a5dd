package mockmcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key cache timing. They are constants, not options: a scenario that needs a
// different timing moves the fake clock instead.
const (
	// jwksMaxAge is how long a fetched JWKS is used before the next token
	// check fetches it again, so a key the AS removed stops verifying.
	jwksMaxAge = 10 * time.Minute
	// jwksRefetchInterval bounds refetches caused by a token whose kid is not
	// in the cached JWKS: at most one per interval per issuer, so a flood of
	// tokens with made-up kids cannot hammer the AS.
	jwksRefetchInterval = 10 * time.Second
	// fetchFailureBackoff is how long a failed metadata or JWKS fetch is
	// remembered before the next token check tries again.
	fetchFailureBackoff = 2 * time.Second
	// maxDocumentBytes bounds a metadata document or a JWKS.
	maxDocumentBytes = 1 << 20
	// fetchTimeout bounds one discovery or JWKS fetch.
	fetchTimeout = 10 * time.Second
)

// errUnknownKey reports a kid that is not in the issuer's JWKS even after a
// refetch (or while refetching is rate-limited).
var errUnknownKey = errors.New("unknown key")

// keyFetchError reports that the issuer's keys could not be obtained: the
// token cannot be judged, which is the server's problem, not the token's.
type keyFetchError struct{ err error }

func (e *keyFetchError) Error() string { return e.err.Error() }
func (e *keyFetchError) Unwrap() error { return e.err }

// keySource finds an issuer's jwks_uri through its RFC 8414 metadata (then
// OpenID Connect discovery) and caches the JWKS it names.
type keySource struct {
	issuer string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	// mu is held across fetches on purpose: concurrent token checks wait for
	// one fetch instead of each starting their own.
	mu          sync.Mutex
	jwksURI     string
	keys        []jose.JSONWebKey
	fetchedAt   time.Time // when keys were fetched; zero = never
	lastRefetch time.Time // last refetch caused by an unknown kid
	failedAt    time.Time // last failed fetch
	failure     error
}

// lookup returns the keys named kid (every key when kid is empty).
func (k *keySource) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	fetched := false
	if k.keys == nil || now.Sub(k.fetchedAt) >= jwksMaxAge {
		if err := k.refreshLocked(ctx, now); err != nil {
			if k.keys == nil {
				return nil, err
			}
			// A stale JWKS beats none while the AS is down.
			k.log.Warn("jwks_stale", "issuer", k.issuer, "error", err.Error())
		} else {
			fetched = true
		}
	}
	if found := match(k.keys, kid); len(found) > 0 {
		return found, nil
	}
	if kid == "" || fetched || now.Sub(k.lastRefetch) < jwksRefetchInterval {
		return nil, errUnknownKey
	}
	k.lastRefetch = now
	if err := k.refreshLocked(ctx, now); err != nil {
		return nil, err
	}
	if found := match(k.keys, kid); len(found) > 0 {
		return found, nil
	}
	return nil, errUnknownKey
}

func match(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, key := range keys {
		if key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// refreshLocked fetches the JWKS, discovering jwks_uri first when needed.
func (k *keySource) refreshLocked(ctx context.Context, now time.Time) error {
	if k.failure != nil && now.Sub(k.failedAt) < fetchFailureBackoff {
		return k.failure
	}
	err := k.fetchLocked(ctx)
	if err != nil {
		k.failure, k.failedAt = &keyFetchError{err}, now
		// The metadata may have moved the JWKS; discover again next time.
		k.jwksURI = ""
		k.log.Error("jwks_fetch_failed", "issuer", k.issuer, "error", err.Error())
		return k.failure
	}
	k.failure = nil
	k.fetchedAt = now
	return nil
}

func (k *keySource) fetchLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	if k.jwksURI == "" {
		uri, err := discoverJWKSURI(ctx, k.client, k.issuer)
		if err != nil {
			return err
		}
		k.jwksURI = uri
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, k.client, k.jwksURI, &raw); err != nil {
		return fmt.Errorf("JWKS of %s: %w", k.issuer, err)
	}
	if raw.Keys == nil {
		return fmt.Errorf("JWKS of %s at %s has no \"keys\" member", k.issuer, k.jwksURI)
	}
	keys := make([]jose.JSONWebKey, 0, len(raw.Keys))
	for i, r := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(r); err != nil {
			k.log.Warn("jwks_key_skipped", "issuer", k.issuer, "index", i, "error", err.Error())
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		// Only ever verify with the public half, even if an AS leaks more.
		keys = append(keys, key.Public())
	}
	k.keys = keys
	k.log.Info("jwks_fetched", "issuer", k.issuer, "jwks_uri", k.jwksURI, "keys", len(keys))
	return nil
}

// metadataURLs lists where an issuer's metadata may live, in the order
// RFC 8414 §3.1 and OpenID Connect Discovery §4 (with the RFC 8414 §5
// compatibility form) are tried by MCP clients.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// discoverJWKSURI reads the issuer's metadata and returns its jwks_uri. The
// document's issuer must equal the issuer exactly (RFC 8414 §3.3).
func discoverJWKSURI(ctx context.Context, c *http.Client, issuer string) (string, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		err := getJSON(ctx, c, u, &md)
		var se *statusError
		if errors.As(err, &se) && se.status == http.StatusNotFound {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("metadata of %s: %w", issuer, err)
		}
		if md.Issuer != issuer {
			return "", fmt.Errorf("metadata at %s names issuer %q, want %q (RFC 8414 section 3.3)", u, md.Issuer, issuer)
		}
		if md.JWKSURI == "" {
			return "", fmt.Errorf("metadata at %s has no jwks_uri", u)
		}
		ju, err := url.Parse(md.JWKSURI)
		if err != nil || !ju.IsAbs() || ju.Host == "" ||
			(ju.Scheme != "https" && !(ju.Scheme == "http" && isLoopbackHost(ju.Hostname()))) {
			return "", fmt.Errorf("metadata at %s: jwks_uri %q is not an https URL", u, md.JWKSURI)
		}
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("no metadata for issuer %s: %w", issuer, errors.Join(errs...))
}

type statusError struct {
	url    string
	status int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: status %d", e.url, e.status)
}

// getJSON fetches u and decodes a JSON object of at most maxDocumentBytes.
// Redirects are not followed: metadata and keys must be where they are named.
func getJSON(ctx context.Context, c *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocumentBytes))
		return &statusError{url: u, status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: not a JSON object: %w", u, err)
	}
	return nil
}
