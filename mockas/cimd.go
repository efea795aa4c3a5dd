package mockas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// cited by MCP authorization 2025-11-25).
const (
	// cimdMaxBytes is the largest document accepted: the draft's "5
	// kilobytes" (§6.6), read as 5120 bytes.
	cimdMaxBytes = 5120
	// cimdMaxCache bounds how long a document is cached whatever its
	// Cache-Control says, so a changed document is seen within the hour.
	cimdMaxCache = time.Hour
	// cimdFetchTimeout bounds one fetch, so a slow host cannot hold an
	// authorization request forever.
	cimdFetchTimeout = 10 * time.Second
)

// cimdError is a Client ID Metadata Document that could not be used. Its
// text names the document and exactly what was wrong.
type cimdError struct {
	URL     string
	Problem string
}

func (e *cimdError) Error() string {
	return fmt.Sprintf("client metadata document at %s %s", e.URL, e.Problem)
}

// checkClientIDURL applies the client identifier URL rules of the draft
// (§3): https, a host, a path, no userinfo, no fragment, no dot segments.
func checkClientIDURL(id string) error {
	u, err := url.Parse(id)
	if err != nil {
		return fmt.Errorf("client_id %q is not a valid URL: %v", id, err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("client_id %q must use https to name a client metadata document", id)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("client_id %q has no host", id)
	case u.User != nil:
		return fmt.Errorf("client_id %q must not contain user information", id)
	case strings.Contains(id, "#"):
		return fmt.Errorf("client_id %q must not contain a fragment", id)
	case u.EscapedPath() == "":
		return fmt.Errorf("client_id %q must have a path", id)
	case hasDotSegment(u.EscapedPath()):
		return fmt.Errorf("client_id %q must not contain . or .. path segments", id)
	}
	return nil
}

// cimdClient returns the client a Client ID Metadata Document describes,
// from the cache or by fetching it. Errors are never cached.
func (s *Server) cimdClient(ctx context.Context, id string) (*clientInfo, error) {
	if err := checkClientIDURL(id); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	e := s.st.cimd[id]
	if e != nil && now.Before(e.expires) {
		s.mu.Unlock()
		return e.client, nil
	}
	s.mu.Unlock()

	c, maxAge, err := s.fetchCIMD(ctx, id)
	if err != nil {
		return nil, err
	}
	if maxAge > 0 {
		s.mu.Lock()
		s.st.cimd[id] = &cimdEntry{client: c, expires: now.Add(maxAge)}
		s.mu.Unlock()
	}
	return c, nil
}

// fetchCIMD fetches and validates one document through the SSRF-guarded
// client and records a cimd_fetch event.
func (s *Server) fetchCIMD(ctx context.Context, id string) (*clientInfo, time.Duration, error) {
	u, _ := url.Parse(id) // checked by checkClientIDURL
	ev := &control.Event{Kind: "cimd_fetch", Method: http.MethodGet, Host: u.Host, Path: u.Path,
		Params: map[string]string{"url": id}, Detail: map[string]string{}}
	status := 0
	c, maxAge, err := func() (*clientInfo, time.Duration, error) {
		fail := func(format string, args ...any) (*clientInfo, time.Duration, error) {
			return nil, 0, &cimdError{URL: id, Problem: fmt.Sprintf(format, args...)}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
		if err != nil {
			return fail("cannot be requested: %v", err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := s.cimdHTTP.Do(req)
		if err != nil {
			var refused *refusedError
			if errors.As(err, &refused) {
				return fail("was not fetched: the SSRF guard %v", refused)
			}
			return fail("could not be fetched: %v", err)
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return fail("answered %s with a redirect to %q; redirects are not followed", resp.Status, resp.Header.Get("Location"))
		}
		if resp.StatusCode != http.StatusOK {
			return fail("answered %s; only 200 OK is accepted", resp.Status)
		}
		ct := resp.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
			return fail("has Content-Type %q; it must be application/json", ct)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, cimdMaxBytes+1))
		if err != nil {
			return fail("could not be read: %v", err)
		}
		if len(body) > cimdMaxBytes {
			return fail("is larger than %d bytes", cimdMaxBytes)
		}
		c, err := parseCIMD(id, body)
		if err != nil {
			return fail("%s", err.Error())
		}
		return c, cacheLifetime(resp.Header), nil
	}()
	if err != nil {
		var ce *cimdError
		if errors.As(err, &ce) {
			ev.Detail["error"] = ce.Problem
		} else {
			ev.Detail["error"] = err.Error()
		}
	} else {
		ev.Detail["client_name"] = c.Name
		ev.Detail["cache_seconds"] = strconv.Itoa(int(maxAge / time.Second))
	}
	s.record(ctx, ev, status)
	return c, maxAge, err
}

// sharedSecretMethods are the token endpoint authentication methods a
// client metadata document must not use (draft §4.1).
var sharedSecretMethods = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt"}

// parseCIMD validates a document's content and returns its client.
func parseCIMD(id string, body []byte) (*clientInfo, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("is not a JSON object: %v", err)
	}
	doc := cimdDoc{obj}
	if err := doc.checkIdentity(id); err != nil {
		return nil, err
	}
	name, err := doc.clientName()
	if err != nil {
		return nil, err
	}
	redirects, err := doc.redirectURIs()
	if err != nil {
		return nil, err
	}
	c := &clientInfo{ID: id, Name: name, RedirectURIs: redirects, CIMD: true}
	if c.NoRefresh, err = doc.noRefresh(); err != nil {
		return nil, err
	}
	if err := doc.checkResponseTypes(); err != nil {
		return nil, err
	}
	return c, nil
}

// cimdDoc is a client metadata document's fields; its errors say what the
// document has, since the caller prefixes them with its URL.
type cimdDoc struct{ jsonObject }

func (d cimdDoc) str(name string) (string, bool, error) {
	v, present, ok := d.jsonObject.str(name)
	if !ok {
		return "", true, fmt.Errorf("has %s that is not a string", name)
	}
	return v, present, nil
}

func (d cimdDoc) strs(name string) ([]string, bool, error) {
	v, present, ok := d.jsonObject.strs(name)
	if !ok {
		return nil, true, fmt.Errorf("has %s that is not an array of strings", name)
	}
	return v, present, nil
}

// checkIdentity checks that the document names itself (its client_id is
// its URL id) and is a public client: no secret, no shared-secret method.
func (d cimdDoc) checkIdentity(id string) error {
	cid, ok, err := d.str("client_id")
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("has no client_id")
	case cid != id:
		return fmt.Errorf("has client_id %q that differs from its URL", cid)
	}
	for _, f := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := d.jsonObject[f]; ok {
			return fmt.Errorf("carries %s, which a client metadata document must not contain: a document is public", f)
		}
	}
	method, _, err := d.str("token_endpoint_auth_method")
	switch {
	case err != nil:
		return err
	case slices.Contains(sharedSecretMethods, method):
		return fmt.Errorf("has token_endpoint_auth_method %q, a shared-secret method, which a client metadata document must not use", method)
	case method != "" && method != "none":
		return fmt.Errorf("has token_endpoint_auth_method %q, which this server does not support for client metadata documents (use none)", method)
	}
	return nil
}

// clientName is the document's client_name, which MCP requires.
func (d cimdDoc) clientName() (string, error) {
	name, ok, err := d.str("client_name")
	switch {
	case err != nil:
		return "", err
	case !ok || strings.TrimSpace(name) == "":
		return "", errors.New("has no client_name, which MCP requires of a client metadata document")
	}
	return name, nil
}

// redirectURIs are the document's redirect URIs: at least one, each
// acceptable.
func (d cimdDoc) redirectURIs() ([]string, error) {
	redirects, ok, err := d.strs("redirect_uris")
	switch {
	case err != nil:
		return nil, err
	case !ok || len(redirects) == 0:
		return nil, errors.New("has no redirect_uris")
	}
	for i, ru := range redirects {
		if err := checkRedirectURI(ru); err != nil {
			return nil, fmt.Errorf("has redirect_uris[%d]: %v", i, err)
		}
	}
	return redirects, nil
}

// noRefresh says whether the document's grant_types, when it has them,
// leave out refresh_token; they must have authorization_code.
func (d cimdDoc) noRefresh() (bool, error) {
	gts, ok, err := d.strs("grant_types")
	switch {
	case err != nil:
		return false, err
	case !ok:
		return false, nil
	case !slices.Contains(gts, "authorization_code"):
		return false, fmt.Errorf("has grant_types %q without authorization_code", gts)
	}
	return !slices.Contains(gts, "refresh_token"), nil
}

// checkResponseTypes checks that the document's response_types, when it
// has them, have code.
func (d cimdDoc) checkResponseTypes() error {
	rts, ok, err := d.strs("response_types")
	if err != nil {
		return err
	}
	if ok && !slices.Contains(rts, "code") {
		return fmt.Errorf("has response_types %q without code", rts)
	}
	return nil
}

// cacheLifetime is how long a fetched document may be cached: its
// Cache-Control max-age (RFC 9111 §5.2.2.1) bounded to [0, cimdMaxCache];
// zero when no-store, no-cache or no max-age is given.
func cacheLifetime(h http.Header) time.Duration {
	var maxAge time.Duration
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store", d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(d, "max-age="), `"`), 10, 64)
				if err != nil || n <= 0 {
					return 0
				}
				if n >= int64(cimdMaxCache/time.Second) {
					maxAge = cimdMaxCache
				} else {
					maxAge = time.Duration(n) * time.Second
				}
			}
		}
	}
	return maxAge
}
