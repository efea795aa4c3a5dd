package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// The protected resource metadata step of discovery (RFC 9728): the
// challenge's hint and the well-known locations, fetched and checked.

// noMetadataError says that no location had protected resource metadata
// (each answered 404 or another 4xx).
type noMetadataError struct{}

func (*noMetadataError) Error() string { return "no protected resource metadata" }

// protectedResourceMetadata tries the challenge's resource_metadata, then the
// path-suffixed and root well-known locations (RFC 9728 §3), and checks that
// the document's resource is the one its location promises (RFC 9728 §3.3).
// It returns the locations it tried.
func (c *Discoverer) protectedResourceMetadata(ctx context.Context, hint, mcpURL string) (*oauthex.ProtectedResourceMetadata, string, []string, error) {
	u, err := url.Parse(mcpURL)
	if err != nil {
		return nil, "", nil, err
	}
	type candidate struct{ url, resource string }
	var cands []candidate
	if hint != "" {
		cands = append(cands, candidate{hint, mcpURL})
	}
	origin := u.Scheme + "://" + u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource/" + p, mcpURL})
	}
	cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource", origin})

	var tried []string
	for i, cand := range cands {
		tried = append(tried, cand.url)
		prm, status, err := c.fetchPRM(ctx, cand.url)
		if status >= 400 && status < 500 {
			continue // not here; try the next location
		}
		var notJSON *notJSONError
		if errors.As(err, &notJSON) && (hint == "" || i > 0) {
			// A well-known location that answers with something else (a
			// catch-all handler's event stream, a web page) has no
			// metadata; a location the server named itself must.
			continue
		}
		if err != nil {
			return nil, "", tried, sentencef("The protected resource metadata at %s could not be read: %v", cand.url, err)
		}
		if prm.Resource != cand.resource {
			return nil, "", tried, sentencef("The protected resource metadata at %s describes %q, not %s; the proxy does not use it.", cand.url, prm.Resource, cand.resource)
		}
		return prm, cand.url, tried, nil
	}
	return nil, "", tried, &noMetadataError{}
}

// notJSONError is an answer that is not JSON, so not a metadata document.
type notJSONError struct{ mediaType string }

func (e *notJSONError) Error() string {
	return fmt.Sprintf("content type %q is not application/json", e.mediaType)
}

// maxMetadata bounds a metadata document.
const maxMetadata = 1 << 20

func (c *Discoverer) fetchPRM(ctx context.Context, u string) (*oauthex.ProtectedResourceMetadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, 0, errors.New(unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("it answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, resp.StatusCode, &notJSONError{mt}
	}
	var prm oauthex.ProtectedResourceMetadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadata)).Decode(&prm); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("it is not a JSON metadata document: %v", err)
	}
	return &prm, resp.StatusCode, nil
}
