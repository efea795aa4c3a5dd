package store

import (
	"crypto/rand"
	"encoding/base64"
)

// NewSecret returns n random bytes, base64url-encoded: a token, code,
// state or session id for the proxy to issue.
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
