package main

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
)

func testGuide(t *testing.T, addr string) *guide {
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(stack.Names...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGuide(addr, "build/demo/ca.pem", "build/demo/mcp-proxy.log", leaf.TLS)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// On a port other than 443 the guide must print nothing that cannot work:
// no URL with the port in it (the issuers and redirects are the docs'),
// no /etc/hosts mapping (which cannot carry a port).
func TestGuideOnAnotherPortMapsNamesNotURLs(t *testing.T) {
	text := testGuide(t, "127.0.0.1:23443").text()
	if strings.Contains(text, "/etc/hosts") {
		t.Error("the guide suggests /etc/hosts, which cannot send port 443 to 23443")
	}
	if m := regexp.MustCompile(`https://[a-z.-]+:\d+`).FindString(text); m != "" {
		t.Errorf("the guide prints the URL %s: the stack's issuers and redirects have no port", m)
	}
	if !strings.Contains(text, "--connect-to ::127.0.0.1:23443 ") {
		t.Error("the curl lines do not send every host's port to the demo's address")
	}
	for _, n := range stack.Names {
		if !strings.Contains(text, "MAP "+n+" 127.0.0.1:23443") {
			t.Errorf("the Chromium rules do not map %s with the port", n)
		}
	}
	for _, want := range []string{"alice-password", "bob-password", "build/demo/mcp-proxy.log", "https://client.example.net/NAME/client-metadata.json"} {
		if !strings.Contains(text, want) {
			t.Errorf("the guide does not say %q", want)
		}
	}
}

func TestGuideOnPort443MayUseHostsFile(t *testing.T) {
	if !strings.Contains(testGuide(t, "127.0.0.1:443").text(), "/etc/hosts") {
		t.Error("on port 443 the guide does not offer the /etc/hosts mapping")
	}
}

// The printed authorization request and token request belong together:
// the challenge is the S256 of the printed verifier.
func TestGuidePKCEPairMatches(t *testing.T) {
	g := testGuide(t, "127.0.0.1:23443")
	u, err := url.Parse(g.authorizeURL())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(g.verifier))
	if got, want := u.Query().Get("code_challenge"), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("code_challenge %q, want S256(verifier) %q", got, want)
	}
	if !strings.Contains(g.text(), "code_verifier="+g.verifier) {
		t.Error("the token request does not carry the verifier")
	}
}
