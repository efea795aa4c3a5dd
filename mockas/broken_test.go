package mockas

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// checkExactRedirect is the check "redirect URIs are compared by exact
// string match" (RFC 9700 §4.1.3), written to return an error rather than
// fail, so that it runs against the real server and against a deliberately
// broken one.
func checkExactRedirect(t *testing.T, f *fixture) error {
	t.Helper()
	_, challenge := pkce("exact")
	for _, variant := range []string{
		pubRedir + "/",
		pubRedir + "?next=https://evil.example",
		pubRedir + "/../../evil",
		pubRedir + "x",
	} {
		p := f.get(t, authURL(authParams(pubID, variant, challenge)))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			return fmt.Errorf("authorize accepted redirect_uri %q: status %d, Location %q", variant, p.status, p.header.Get("Location"))
		}
	}
	code, verifier := f.code(t, pubID, pubRedir, nil)
	v := exchange(code, verifier)
	v.Set("redirect_uri", pubRedir+"/")
	if status, body := f.token(t, v, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		return fmt.Errorf("token endpoint accepted redirect_uri %q for a code issued to %q: %d %v", pubRedir+"/", pubRedir, status, body)
	}
	return nil
}

func TestExactRedirectMatch(t *testing.T) {
	if err := checkExactRedirect(t, newFixture(t, nil, nil)); err != nil {
		t.Fatal(err)
	}
}

// TestExactRedirectMatchCatchesPrefixMatching proves that the check can
// fail. The server's redirect comparison is relaxed to a prefix match, a
// real bug class ("the redirect URI starts with a registered one"), which
// lets an attacker append a path or query and steal the code. The first
// assertion of checkExactRedirect catches it: /authorize answers 302 to
// pubRedir+"/" instead of the 400 page.
func TestExactRedirectMatchCatchesPrefixMatching(t *testing.T) {
	f := newFixture(t, nil, func(s *Server) {
		s.redirectMatch = func(registered, requested string) bool { return strings.HasPrefix(requested, registered) }
	})
	err := checkExactRedirect(t, f)
	if err == nil {
		t.Fatal("checkExactRedirect passed against a server that compares redirect URIs by prefix")
	}
	if !strings.Contains(err.Error(), "authorize accepted redirect_uri") {
		t.Fatalf("caught by an unexpected assertion: %v", err)
	}
	t.Logf("caught as intended: %v", err)
}
