package clientid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/redact"
)

// document is a Client ID Metadata Document as published: the fields the
// proxy uses, and the client secret fields it refuses. It is an alias of
// an unnamed struct type, not a defined type, because encoding/json names
// the type in a decode error ("cannot unmarshal array into Go value of
// type struct { ... }") and that text must stay what it was.
type document = struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	ClientURI               string          `json:"client_uri"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	ApplicationType         string          `json:"application_type"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 string          `json:"jwks_uri"`
	ClientSecret            *string         `json:"client_secret"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at"`
}

// fetch gets the metadata document of the client id id and checks it; the
// duration is how long the client may be cached.
func (r *Resolver) fetch(ctx context.Context, id string) (*Client, time.Duration, error) {
	body, h, err := r.getDocument(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	c, err := checkDocument(id, body)
	if err != nil {
		return nil, 0, err
	}
	return c, cacheTTL(h), nil
}

// getDocument fetches the document at id: a 200 answer, of a JSON content
// type, at most MaxDocumentSize bytes. It returns the body and the
// answer's header.
func (r *Resolver) getDocument(ctx context.Context, id string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, nil, &Error{id, err.Error(), nil}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, nil, &Error{id, "its metadata document could not be fetched", errors.New(unwrapURLError(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		reason := fmt.Sprintf("fetching its metadata document answered %s, not 200", resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			reason += " (a redirect to " + redact.Truncate(Redact(loc), 200) + "; client id URLs are not followed)"
		}
		return nil, nil, &Error{id, reason, nil}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, nil, &Error{id, fmt.Sprintf("its metadata document has content type %q, not application/json", mt), nil}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, nil, &Error{id, "reading its metadata document: " + err.Error(), nil}
	}
	if len(body) > MaxDocumentSize {
		return nil, nil, &Error{id, fmt.Sprintf("its metadata document is larger than %d bytes", MaxDocumentSize), nil}
	}
	return body, resp.Header, nil
}

// checkDocument decodes the document body fetched from id and checks it
// before it trusts a single field: its fields, each redirect URI, and the
// keys of a private_key_jwt client.
func checkDocument(id string, body []byte) (*Client, error) {
	var doc document
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &Error{id, decodeReason(err), nil}
	}
	if err := checkFields(id, &doc); err != nil {
		return nil, err
	}
	c := &Client{ID: id, Name: doc.ClientName, URI: doc.ClientURI, RedirectURIs: doc.RedirectURIs,
		Native: doc.ApplicationType == "native", AuthMethod: AuthNone}
	for i, u := range doc.RedirectURIs {
		if err := CheckRedirectURI(u, c.Native); err != nil {
			return nil, &Error{id, fmt.Sprintf("its metadata document's redirect_uris[%d] %v", i, err), nil}
		}
	}
	if doc.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		if err := c.setKeys(doc.JWKS, doc.JWKSURI); err != nil {
			return nil, err
		}
	}
	if c.Name == "" {
		c.Name = c.Host()
	}
	return c, nil
}

// checkFields checks the document's own fields: it names its URL as
// client_id, holds no client secret, asks for no shared-secret
// authentication, lists redirect URIs and names a known application type.
func checkFields(id string, doc *document) error {
	switch {
	case doc.ClientID != id:
		return &Error{id, fmt.Sprintf("its metadata document names client_id %q, which differs from its URL", doc.ClientID), nil}
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return &Error{id, "its metadata document carries a client secret, which a published document must not", nil}
	case slices.Contains([]string{"client_secret_basic", "client_secret_post", "client_secret_jwt"}, doc.TokenEndpointAuthMethod):
		return &Error{id, fmt.Sprintf("its metadata document asks for token_endpoint_auth_method %q, a shared secret", doc.TokenEndpointAuthMethod), nil}
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != AuthNone && doc.TokenEndpointAuthMethod != AuthPrivateKeyJWT:
		return &Error{id, fmt.Sprintf("token_endpoint_auth_method %q is not supported; the proxy accepts public clients (none) with PKCE and private_key_jwt", doc.TokenEndpointAuthMethod), nil}
	case len(doc.RedirectURIs) == 0:
		return &Error{id, "its metadata document has no redirect_uris", nil}
	case doc.ApplicationType != "" && doc.ApplicationType != "web" && doc.ApplicationType != "native":
		return &Error{id, fmt.Sprintf("its metadata document has application_type %q; use web (the default) or native", doc.ApplicationType), nil}
	}
	return nil
}

// setKeys makes c a private_key_jwt client with the document's jwks or
// jwks_uri: exactly one of them.
func (c *Client) setKeys(jwks json.RawMessage, jwksURI string) error {
	hasJWKS := len(jwks) > 0 && string(jwks) != "null"
	switch {
	case hasJWKS && jwksURI != "":
		return &Error{c.ID, "its metadata document has both jwks and jwks_uri; a private_key_jwt client publishes its keys in exactly one of them", nil}
	case !hasJWKS && jwksURI == "":
		return &Error{c.ID, "its metadata document asks for private_key_jwt but has neither jwks nor jwks_uri; publish the client's public keys in one of them", nil}
	case hasJWKS:
		set, err := parseKeySet(jwks)
		if err != nil {
			return &Error{c.ID, "its metadata document's jwks " + err.Error(), nil}
		}
		c.JWKS = set
	default:
		if err := checkJWKSURI(jwksURI); err != nil {
			return &Error{c.ID, "its metadata document's " + err.Error(), nil}
		}
		c.JWKSURI = jwksURI
	}
	c.AuthMethod = AuthPrivateKeyJWT
	return nil
}

// cacheTTL reads Cache-Control (RFC 9111) and bounds it.
func cacheTTL(h http.Header) time.Duration {
	ttl := minCache
	for d := range strings.SplitSeq(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, minCache), maxCache)
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// decodeReason says why a document did not decode, in the terms of JSON
// rather than of the Go types it is decoded into.
func decodeReason(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("its metadata document's %s is %s, not %s", te.Field, jsonArticle(te.Value), jsonKind(te.Type))
	case errors.As(err, &te):
		return "its metadata document is not a JSON object"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("its metadata document is not valid JSON (at byte %d: %v)", se.Offset, err)
	}
	return "its metadata document does not decode: " + err.Error()
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

// jsonArticle is json's name of a value kind ("string", "number", …) with
// its article.
func jsonArticle(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	case "bool":
		return "true or false"
	}
	return "a " + v
}
