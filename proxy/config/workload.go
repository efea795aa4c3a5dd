package config

import (
	"errors"
	"os"
	"strings"
)

// sources counts the sources of a service account's shared token a
// configuration sets: exactly one is valid.
func sources(sa *ServiceAccount) int {
	n := 0
	for _, set := range []bool{sa.Admin != "", sa.ClientCredentials, sa.WorkloadIdentity != nil} {
		if set {
			n++
		}
	}
	return n
}

// validate checks a workload identity and provisions its path: the token
// file must be readable and hold a compact JWT now, so that a typo in the
// path is refused at load and not at the first user's request; the
// route's client, if any, must be public, since the workload JWT is the
// only credential the grant presents (SEP-1933).
func (w *WorkloadIdentity) validate(p string, up *UpstreamOAuth2, d *decoder) {
	fp := p + ".token_file"
	if up != nil && (up.ClientSecret != "" || up.PrivateKeyFile != "") {
		d.errorf(d.pos(p), p, "presents the workload's JWT as the only credential; remove upstream_oauth2.client_secret and upstream_oauth2.private_key_file (upstream_oauth2.client_id may stay, sent as the public client's id)")
	}
	if w.TokenFile == "" {
		if !d.failed(fp) {
			d.errorf(d.pos(p), fp, "missing; name the file that holds the workload's JWT, such as a projected service account token")
		}
		return
	}
	w.path = d.resolve(w.TokenFile)
	b, err := os.ReadFile(w.path)
	if err != nil {
		d.errorf(d.pos(fp), fp, "cannot read %s: %v; the proxy must be able to read the workload's token when it starts", w.TokenFile, errors.Unwrap(err))
		return
	}
	if !LooksLikeJWT(string(b)) {
		d.errorf(d.pos(fp), fp, "%s does not hold a JWT (three base64url parts separated by dots); point it at the workload's token itself", w.TokenFile)
	}
}

// LooksLikeJWT reports whether s, without surrounding white space, has
// the shape of a compact JWS: three non-empty base64url parts.
func LooksLikeJWT(s string) bool {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return false
	}
	for _, part := range parts {
		if part == "" || strings.Trim(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}
