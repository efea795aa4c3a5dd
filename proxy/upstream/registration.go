package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/redact"
)

// maxRegistrationResponse bounds a registration endpoint's answer.
const maxRegistrationResponse = 1 << 20

// Registration is what an authorization server answered to a dynamic
// client registration (RFC 7591 §3.2.1), read tolerantly: every member
// RFC 7591 defines may be absent, "jwks" is a JSON object as §2 defines it,
// timestamps may be numbers or numeric strings, and unknown members are
// ignored. ClientSecret and RegistrationAccessToken are credentials:
// String, Format and LogValue leave them (and the management URI) out, so
// printing or logging a Registration never shows them.
type Registration struct {
	ClientID                string
	ClientSecret            string
	ClientIDIssuedAt        int64 // seconds since the epoch; 0 when absent
	ClientSecretExpiresAt   int64 // 0 means the secret does not expire
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	RedirectURIs            []string
	Scope                   string
	// RegistrationAccessToken and RegistrationClientURI manage the
	// registration (RFC 7592); kept for that, never logged.
	RegistrationAccessToken string
	RegistrationClientURI   string
	// JWKS is the client's key set as the server echoed it, if it did.
	JWKS json.RawMessage
}

// registrationAnswer is the wire form. Members whose type servers vary on
// are decoded through flexible types.
type registrationAnswer struct {
	ClientID                flexString      `json:"client_id"`
	ClientSecret            string          `json:"client_secret"`
	ClientIDIssuedAt        flexInt         `json:"client_id_issued_at"`
	ClientSecretExpiresAt   flexInt         `json:"client_secret_expires_at"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              flexStrings     `json:"grant_types"`
	ResponseTypes           flexStrings     `json:"response_types"`
	RedirectURIs            flexStrings     `json:"redirect_uris"`
	Scope                   flexString      `json:"scope"`
	RegistrationAccessToken string          `json:"registration_access_token"`
	RegistrationClientURI   string          `json:"registration_client_uri"`
	JWKS                    json.RawMessage `json:"jwks"`
}

// flexString accepts a JSON string, number or null.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = ""
	case string:
		*s = flexString(v)
	case float64:
		*s = flexString(strconv.FormatFloat(v, 'f', -1, 64))
	default:
		return fmt.Errorf("want a string, got %s", jsonKind(v))
	}
	return nil
}

// flexInt accepts a JSON number, a numeric string or null.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*n = 0
	case float64:
		*n = flexInt(v)
	case string:
		if v == "" {
			*n = 0
			return nil
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want a number of seconds, got %q", v)
		}
		*n = flexInt(i)
	default:
		return fmt.Errorf("want a number, got %s", jsonKind(v))
	}
	return nil
}

// flexStrings accepts an array of strings, one string (space-separated
// values are not split: a single value) or null.
type flexStrings []string

func (s *flexStrings) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = nil
	case string:
		*s = flexStrings{v}
	case []any:
		out := make(flexStrings, 0, len(v))
		for _, x := range v {
			str, ok := x.(string)
			if !ok {
				return fmt.Errorf("want an array of strings, got an element that is %s", jsonKind(x))
			}
			out = append(out, str)
		}
		*s = out
	default:
		return fmt.Errorf("want an array of strings, got %s", jsonKind(v))
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// DecodeRegistration reads a successful registration answer's body.
// Its errors never quote the body.
func DecodeRegistration(body []byte) (*Registration, error) {
	var a registrationAnswer
	if err := decodeMembers(body, &a); err != nil {
		return nil, fmt.Errorf("the registration answer is not a client information response (RFC 7591 section 3.2.1): %s", err)
	}
	if a.ClientID == "" {
		return nil, fmt.Errorf("the registration answer has no client_id")
	}
	reg := &Registration{
		ClientID:                string(a.ClientID),
		ClientSecret:            a.ClientSecret,
		ClientIDIssuedAt:        int64(a.ClientIDIssuedAt),
		ClientSecretExpiresAt:   int64(a.ClientSecretExpiresAt),
		TokenEndpointAuthMethod: a.TokenEndpointAuthMethod,
		GrantTypes:              a.GrantTypes,
		ResponseTypes:           a.ResponseTypes,
		RedirectURIs:            a.RedirectURIs,
		Scope:                   string(a.Scope),
		RegistrationAccessToken: a.RegistrationAccessToken,
	}
	if len(a.JWKS) > 0 && !bytes.Equal(a.JWKS, []byte("null")) {
		reg.JWKS = a.JWKS
	}
	// The management URI is kept only when it is a URL the proxy could
	// call; anything else (a javascript: URL) is dropped, never followed.
	if u, err := url.Parse(a.RegistrationClientURI); err == nil && u.Host != "" &&
		(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		reg.RegistrationClientURI = a.RegistrationClientURI
	}
	return reg, nil
}

// decodeMembers decodes a JSON object into a's members one by one, so that
// an error names the member (and never quotes the document).
func decodeMembers(body []byte, a *registrationAnswer) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return errors.New(describeJSONError(err))
	}
	targets := map[string]any{
		"client_id": &a.ClientID, "client_secret": &a.ClientSecret,
		"client_id_issued_at": &a.ClientIDIssuedAt, "client_secret_expires_at": &a.ClientSecretExpiresAt,
		"token_endpoint_auth_method": &a.TokenEndpointAuthMethod, "grant_types": &a.GrantTypes,
		"response_types": &a.ResponseTypes, "redirect_uris": &a.RedirectURIs, "scope": &a.Scope,
		"registration_access_token": &a.RegistrationAccessToken, "registration_client_uri": &a.RegistrationClientURI,
		"jwks": &a.JWKS,
	}
	for name, raw := range members {
		t, ok := targets[name]
		if !ok || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, t); err != nil {
			return fmt.Errorf("member %q: %s", name, describeJSONError(err))
		}
	}
	return nil
}

// describeJSONError names what was wrong without quoting the document:
// the member and the types, or the syntax error's position.
func describeJSONError(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("it is %s, not %s", e.Value, e.Type)
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	}
	return strings.TrimPrefix(redact.Text(err.Error()), "json: ")
}

// String names the client without its credentials.
func (r *Registration) String() string {
	if r == nil {
		return "<nil registration>"
	}
	secret := "none"
	if r.ClientSecret != "" {
		secret = redact.Redacted
	}
	return fmt.Sprintf("client_id=%s token_endpoint_auth_method=%s client_secret=%s", r.ClientID, r.TokenEndpointAuthMethod, secret)
}

// Format prints String for every verb, so %v, %+v and %#v cannot show
// the credentials either.
func (r *Registration) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }

// LogValue logs the client without its credentials.
func (r *Registration) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("")
	}
	return slog.GroupValue(slog.String("client_id", r.ClientID),
		slog.String("token_endpoint_auth_method", r.TokenEndpointAuthMethod),
		slog.Bool("has_client_secret", r.ClientSecret != ""))
}

// RegistrationError is an authorization server's refusal of a
// registration: the RFC 7591 §3.2.2 error, or the status of an answer
// that is not one. Description is the server's text, redacted.
type RegistrationError struct {
	Endpoint    string
	Status      int
	Code        string // "invalid_redirect_uri", "invalid_client_metadata", ...
	Description string
}

func (e *RegistrationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the registration endpoint %s answered %d %s", e.Endpoint, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, ", error %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	return b.String()
}

// registrationRequest is the client metadata the proxy registers
// (RFC 7591 §2).
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

// Register registers a public client for redirectURL at a registration
// endpoint (RFC 7591). The answer is read with DecodeRegistration; every
// error it returns is safe to show and log (the server's text is
// redacted, the body is never quoted whole).
func Register(ctx context.Context, hc *http.Client, endpoint, clientName, clientURI, redirectURL string) (*Registration, error) {
	payload, err := json.Marshal(registrationRequest{
		RedirectURIs:            []string{redirectURL},
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              clientName,
		ClientURI:               clientURI,
		ApplicationType:         "web",
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the registration request to %s failed: %s", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRegistrationResponse))
	if err != nil {
		return nil, fmt.Errorf("reading the registration answer of %s: %v", endpoint, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		re := &RegistrationError{Endpoint: endpoint, Status: resp.StatusCode}
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			re.Code, re.Description = redact.Text(e.Code), redact.Text(e.Description)
		} else if len(bytes.TrimSpace(body)) > 0 {
			re.Description = redact.Text(string(body))
		}
		return nil, re
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, fmt.Errorf("the registration endpoint %s answered %q, not application/json", endpoint, mt)
	}
	reg, err := DecodeRegistration(body)
	if err != nil {
		return nil, fmt.Errorf("the registration endpoint %s: %w", endpoint, err)
	}
	return reg, nil
}
