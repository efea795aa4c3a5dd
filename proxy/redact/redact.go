// Package redact makes text that strangers sent fit to show and log: it
// replaces credentials with [redacted] and cuts what is too long. Both the
// proxy's downstream side (client documents, registrations) and its
// upstream leg (remote authorization servers' answers) quote such text.
package redact

import (
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redacted replaces a secret in text the proxy shows or logs.
const Redacted = "[redacted]"

// MaxText bounds how much of a remote server's answer an error quotes.
const MaxText = 512

// secretFields are the members of OAuth answers and requests whose values
// are credentials: tokens, client secrets, codes, assertions.
var secretFields = map[string]bool{
	"access_token":              true,
	"refresh_token":             true,
	"id_token":                  true,
	"client_secret":             true,
	"registration_access_token": true,
	"code":                      true,
	"code_verifier":             true,
	"device_code":               true,
	"assertion":                 true,
	"client_assertion":          true,
	"subject_token":             true,
	"actor_token":               true,
	"issued_token":              true,
	"password":                  true,
	"secret":                    true,
	"token":                     true,
}

var (
	// fieldPattern finds name=value, name: value and "name":"value" pairs
	// of the secret fields in text that is not JSON (a form, a log line,
	// an HTML page).
	fieldPattern = regexp.MustCompile(`(?i)("?\b(?:` + fieldAlternatives() + `)\b"?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|[^\s&,;"'<>}]+)`)
	// jwtPattern finds a compact JWS or JWE anywhere.
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?`)
	// bearerPattern finds an HTTP bearer or basic credential.
	bearerPattern = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)
)

func fieldAlternatives() string {
	names := make([]string, 0, len(secretFields))
	for n := range secretFields {
		names = append(names, regexp.QuoteMeta(n))
	}
	// Longest first, so registration_access_token is not read as
	// access_token.
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if len(names[j]) > len(names[i]) {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return strings.Join(names, "|")
}

// Text returns text from a remote server with every credential in it
// replaced by [redacted], shortened to a length an error message can carry.
// A JSON document keeps its shape with the values of secret members
// replaced; other text has name=value pairs of secret names, bearer
// credentials and anything shaped like a JWT replaced.
func Text(text string) string {
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		var v any
		if json.Unmarshal([]byte(t), &v) == nil {
			if b, err := json.Marshal(redactJSON(v)); err == nil {
				return Truncate(string(b), MaxText)
			}
		}
	}
	return Truncate(redactText(text), MaxText)
}

func redactText(s string) string {
	s = fieldPattern.ReplaceAllString(s, `${1}`+Redacted)
	s = jwtPattern.ReplaceAllString(s, Redacted)
	return bearerPattern.ReplaceAllString(s, `${1} `+Redacted)
}

func redactJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if secretFields[strings.ToLower(k)] {
				v[k] = Redacted
				continue
			}
			v[k] = redactJSON(x)
		}
	case []any:
		for i, x := range v {
			v[i] = redactJSON(x)
		}
	case string:
		return redactText(v)
	}
	return v
}

// Truncate cuts s to at most n bytes on a character boundary, with "…"
// when cut: for messages and logs that quote what a stranger sent.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
