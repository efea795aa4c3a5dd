package mockas

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const docHost = "https://client.example.net"

// doc returns a valid document for the client id URL docHost+path, changed
// by change.
func doc(path string, change func(map[string]any)) map[string]any {
	d := goodCIMD()
	d["client_id"] = docHost + path
	d["redirect_uris"] = []string{pubRedir}
	if change != nil {
		change(d)
	}
	return d
}

// sizedDoc answers a valid document for path padded to exactly n bytes.
func sizedDoc(path string, n int) http.HandlerFunc {
	d := doc(path, func(m map[string]any) { m["software_id"] = "" })
	b, _ := json.Marshal(d)
	d["software_id"] = strings.Repeat("x", n-len(b))
	b, _ = json.Marshal(d)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// authorizeAs starts an authorization for a client id URL and returns the
// answer.
func (f *fixture) authorizeAs(t *testing.T, clientID string) *page {
	t.Helper()
	_, challenge := pkce("cimd")
	return f.get(t, authURL(authParams(clientID, pubRedir, challenge)))
}

// TestCIMDRefusals serves one broken Client ID Metadata Document per case
// and checks the exact refusal: an HTML 400 page (the client is not
// validated, so nothing redirects), a cimd_fetch event naming the problem,
// nothing cached, nothing stored.
func TestCIMDRefusals(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.e.hosts.Set("evil.example.net", 443, netip.MustParseAddrPort("10.0.0.7:443"))
	f.e.hosts.Set("metadata.example.net", 443, netip.MustParseAddrPort("169.254.169.254:443"))
	f.e.hosts.Set("mixed.example.net", 443, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("192.168.1.10:443"))

	cases := []struct {
		name    string
		path    string           // served on client.example.net, with handler
		handler http.HandlerFunc // nil: nothing served
		id      string           // the client_id, when not docHost+path
		desc    string           // a part of the error description
		fetched bool             // whether a fetch was attempted (cimd_fetch event)
		status  int              // the cimd_fetch event's status
	}{
		{name: "not found", path: "/c/404", desc: "answered 404 Not Found; only 200 OK is accepted", fetched: true, status: 404},
		{name: "server error", path: "/c/500", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, desc: "answered 500", fetched: true, status: 500},
		{name: "204 No Content", path: "/c/204", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, desc: "only 200 OK", fetched: true, status: 204},
		{name: "redirect", path: "/c/moved", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/oauth/client.json", http.StatusFound)
		}, desc: `with a redirect to "/oauth/client.json"; redirects are not followed`, fetched: true, status: 302},
		{name: "permanent redirect", path: "/c/perm", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://client.example.net/oauth/client.json", http.StatusPermanentRedirect)
		}, desc: "redirects are not followed", fetched: true, status: 308},
		{name: "larger than 5 KB", path: "/c/big", handler: sizedDoc("/c/big", 5121), desc: "is larger than 5120 bytes", fetched: true, status: 200},
		{name: "HTML", path: "/c/html", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html></html>")
		}, desc: `has Content-Type "text/html"`, fetched: true, status: 200},
		{name: "JSON content type, not JSON", path: "/c/notjson", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "client_id=x")
		}, desc: "is not a JSON object", fetched: true, status: 200},
		{name: "JSON array", path: "/c/array", handler: jsonDoc([]any{doc("/c/array", nil)}), desc: "is not a JSON object", fetched: true, status: 200},
		{name: "client_id differs", path: "/c/differs", handler: jsonDoc(doc("/c/differs", func(m map[string]any) { m["client_id"] = docHost + "/c/other" })),
			desc: `has client_id "https://client.example.net/c/other" that differs from its URL`, fetched: true, status: 200},
		{name: "client_id differs by a trailing slash", path: "/c/slash", handler: jsonDoc(doc("/c/slash", func(m map[string]any) { m["client_id"] = docHost + "/c/slash/" })),
			desc: "that differs from its URL", fetched: true, status: 200},
		{name: "client_id missing", path: "/c/noid", handler: jsonDoc(doc("/c/noid", func(m map[string]any) { delete(m, "client_id") })), desc: "has no client_id", fetched: true, status: 200},
		{name: "carries client_secret", path: "/c/secret", handler: jsonDoc(doc("/c/secret", func(m map[string]any) { m["client_secret"] = "s" })), desc: "carries client_secret", fetched: true, status: 200},
		{name: "carries client_secret_expires_at", path: "/c/secretexp", handler: jsonDoc(doc("/c/secretexp", func(m map[string]any) { m["client_secret_expires_at"] = 0 })), desc: "carries client_secret_expires_at", fetched: true, status: 200},
		{name: "client_secret_basic", path: "/c/basic", handler: jsonDoc(doc("/c/basic", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" })), desc: "a shared-secret method", fetched: true, status: 200},
		{name: "client_secret_jwt", path: "/c/jwt", handler: jsonDoc(doc("/c/jwt", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" })), desc: "a shared-secret method", fetched: true, status: 200},
		{name: "redirect_uris missing", path: "/c/noredir", handler: jsonDoc(doc("/c/noredir", func(m map[string]any) { delete(m, "redirect_uris") })), desc: "has no redirect_uris", fetched: true, status: 200},
		{name: "redirect_uris not strings", path: "/c/redirnum", handler: jsonDoc(doc("/c/redirnum", func(m map[string]any) { m["redirect_uris"] = []int{1} })), desc: "redirect_uris that is not an array of strings", fetched: true, status: 200},
		{name: "client_name missing", path: "/c/noname", handler: jsonDoc(doc("/c/noname", func(m map[string]any) { delete(m, "client_name") })), desc: "has no client_name", fetched: true, status: 200},
		{name: "grant_types without authorization_code", path: "/c/grants", handler: jsonDoc(doc("/c/grants", func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} })), desc: "without authorization_code", fetched: true, status: 200},
		{name: "URL with a fragment", id: docHost + "/c/frag#x", desc: "must not contain a fragment"},
		{name: "URL with user information", id: "https://user@client.example.net/c/user", desc: "must not contain user information"},
		{name: "URL with a dot segment", id: docHost + "/c/../oauth/client.json", desc: "must not contain . or .. path segments"},
		{name: "URL with an encoded dot segment", id: docHost + "/c/%2e%2e/oauth/client.json", desc: "must not contain . or .. path segments"},
		{name: "URL without a path", id: docHost, desc: "must have a path"},
		{name: "plain http URL", id: "http://client.example.net/oauth/client.json", desc: "must use https"},
		{name: "host resolving to a private address", id: "https://evil.example.net/client.json", desc: "the SSRF guard refused to connect to evil.example.net: it resolves to 10.0.0.7, a private address", fetched: true},
		{name: "host resolving to a link-local address", id: "https://metadata.example.net/client.json", desc: "169.254.169.254, a link-local address", fetched: true},
		{name: "host with one private address among others", id: "https://mixed.example.net/client.json", desc: "SSRF guard", fetched: true},
		{name: "private IP literal", id: "https://10.0.0.7/client.json", desc: "10.0.0.7: it is a private address", fetched: true},
		{name: "loopback IP literal", id: "https://127.0.0.1/client.json", desc: "loopback address", fetched: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.handler != nil {
				f.docs.handle(tc.path, tc.handler)
			}
			id := tc.id
			if id == "" {
				id = docHost + tc.path
			}
			fetchesBefore := f.s.Recorder().Count("cimd_fetch")
			hitsBefore := f.docs.hitCount("/oauth/client.json")
			before := durableOf(f.s.stats())

			p := f.authorizeAs(t, id)
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want an HTML 400 page", p.status, p.header.Get("Location"))
			}
			code, desc := elementText(p.body, "error"), elementText(p.body, "error_description")
			if code != "invalid_client" || !strings.Contains(desc, tc.desc) {
				t.Fatalf("got %s: %s\nwant invalid_client containing %q", code, desc, tc.desc)
			}
			if diff := cmp.Diff(before, durableOf(f.s.stats())); diff != "" {
				t.Errorf("a refused document changed the state (-before +after):\n%s", diff)
			}
			if f.docs.hitCount("/oauth/client.json") != hitsBefore {
				t.Error("a redirect was followed")
			}
			fetches := f.s.Recorder().Count("cimd_fetch") - fetchesBefore
			if !tc.fetched {
				if fetches != 0 {
					t.Fatalf("%d fetches of an invalid client id URL, want none", fetches)
				}
				return
			}
			if fetches != 1 {
				t.Fatalf("%d cimd_fetch events, want 1", fetches)
			}
			evs := f.s.Recorder().Events()
			var ev = evs[0]
			for _, e := range evs {
				if e.Kind == "cimd_fetch" {
					ev = e
				}
			}
			if ev.Params["url"] != id || ev.Status != tc.status || ev.Detail["error"] == "" || !strings.Contains(desc, ev.Detail["error"]) {
				t.Errorf("cimd_fetch event %+v, want url %s, status %d and the error", ev, id, tc.status)
			}
		})
	}
	if refused := f.e.hosts.RefusedDials(); len(refused) != 0 {
		t.Fatalf("the host map saw dials outside loopback: %v: the SSRF guard let them through", refused)
	}
}

// TestCIMDExactMessage pins one whole error text, the one an operator
// greps for.
func TestCIMDExactMessage(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.docs.handle("/y", jsonDoc(doc("/y", func(m map[string]any) { m["client_id"] = "https://client.example.net/z" })))
	p := f.authorizeAs(t, docHost+"/y")
	got := elementText(p.body, "error") + ": " + elementText(p.body, "error_description")
	want := `invalid_client: client metadata document at https://client.example.net/y has client_id "https://client.example.net/z" that differs from its URL`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestCIMDAccepted covers documents that must work: exactly 5120 bytes, a
// +json media type, and a redirect URI that the document does not list,
// which is refused only after the document was accepted.
func TestCIMDAccepted(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.docs.handle("/ok/5120", sizedDoc("/ok/5120", 5120))
	f.docs.handle("/ok/plusjson", jsonDoc(doc("/ok/plusjson", nil), "Content-Type", "application/oauth-client+json; charset=utf-8"))
	for _, path := range []string{"/ok/5120", "/ok/plusjson"} {
		if p := f.authorizeAs(t, docHost+path); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("%s: status %d %s", path, p.status, elementText(p.body, "error_description"))
		}
	}
	_, challenge := pkce("x")
	p := f.get(t, authURL(authParams(docHost+"/ok/plusjson", "https://client.example.net/elsewhere", challenge)))
	if p.status != http.StatusBadRequest || elementText(p.body, "error") != "invalid_request" || !strings.Contains(elementText(p.body, "error_description"), "exact string match") {
		t.Fatalf("unlisted redirect URI: %d %s", p.status, elementText(p.body, "error_description"))
	}
}

// TestCIMDCaching checks that documents are cached for their max-age,
// bounded to an hour, not at all with no-store, and that errors are never
// cached.
func TestCIMDCaching(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.docs.handle("/cache/60", jsonDoc(doc("/cache/60", nil), "Cache-Control", "public, max-age=60"))
	f.docs.handle("/cache/nostore", jsonDoc(doc("/cache/nostore", nil), "Cache-Control", "no-store"))
	f.docs.handle("/cache/none", jsonDoc(doc("/cache/none", nil)))
	f.docs.handle("/cache/day", jsonDoc(doc("/cache/day", nil), "Cache-Control", "max-age=86400"))
	fetches := func(path string) int { return f.docs.hitCount(path) }
	ok := func(path string) {
		t.Helper()
		if p := f.authorizeAs(t, docHost+path); p.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, p.status, elementText(p.body, "error_description"))
		}
	}
	steps := []struct {
		advance time.Duration
		path    string
		want    int // fetches so far
	}{
		{0, "/cache/60", 1},
		{30 * time.Second, "/cache/60", 1},
		{31 * time.Second, "/cache/60", 2},
		{0, "/cache/nostore", 1},
		{0, "/cache/nostore", 2},
		{0, "/cache/none", 1},
		{0, "/cache/none", 2},
		{0, "/cache/day", 1},
		{59 * time.Minute, "/cache/day", 1},
		{time.Minute + time.Second, "/cache/day", 2},
	}
	for i, st := range steps {
		f.e.clock.Advance(st.advance)
		ok(st.path)
		if got := fetches(st.path); got != st.want {
			t.Fatalf("step %d (%s): %d fetches, want %d", i, st.path, got, st.want)
		}
	}

	// An error is not cached: once the document is fixed, it works at once.
	f.docs.handle("/cache/flaky", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	if p := f.authorizeAs(t, docHost+"/cache/flaky"); p.status != http.StatusBadRequest {
		t.Fatalf("flaky: %d", p.status)
	}
	f.docs.handle("/cache/flaky", jsonDoc(doc("/cache/flaky", nil), "Cache-Control", "max-age=600"))
	ok("/cache/flaky")
	if got := fetches("/cache/flaky"); got != 2 {
		t.Fatalf("flaky: %d fetches, want 2", got)
	}
}

// TestCIMDTrust checks the SSRF guard's exceptions: the stack's own names
// (TrustedHosts) and the explicit loopback mode; without either, a name
// that resolves to loopback is refused before any dial.
func TestCIMDTrust(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"neither", func(c *Config) { c.TrustedHosts = nil }, false},
		{"another trusted host", func(c *Config) { c.TrustedHosts = []string{"other.example.net"} }, false},
		{"trusted host", nil, true},
		{"loopback allowed", func(c *Config) { c.TrustedHosts = nil; c.AllowLoopback = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mutate, nil)
			// The fixture's goodCIMD lists cimdRedir, not pubRedir.
			_, challenge := pkce("t")
			p := f.get(t, authURL(authParams(cimdURL, cimdRedir, challenge)))
			if tc.ok {
				if p.status != http.StatusOK {
					t.Fatalf("status %d: %s", p.status, elementText(p.body, "error_description"))
				}
				return
			}
			desc := elementText(p.body, "error_description")
			if p.status != http.StatusBadRequest || !strings.Contains(desc, "SSRF guard refused to connect to client.example.net") || !strings.Contains(desc, "loopback") {
				t.Fatalf("status %d: %s", p.status, desc)
			}
			if f.docs.hitCount("/oauth/client.json") != 0 {
				t.Fatal("the document was fetched")
			}
		})
	}
}

// TestCIMDDisabled checks that DisableCIMD removes the advertisement and
// refuses URL client ids without fetching them.
func TestCIMDDisabled(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DisableCIMD = true }, nil)
	_, meta, err := getJSON(f.e.client(), asIssuer+"/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := meta["client_id_metadata_document_supported"]; ok {
		t.Fatal("metadata advertises client_id_metadata_document_supported")
	}
	_, challenge := pkce("d")
	p := f.get(t, authURL(authParams(cimdURL, cimdRedir, challenge)))
	if p.status != http.StatusBadRequest || !strings.Contains(elementText(p.body, "error_description"), "does not accept Client ID Metadata Documents") {
		t.Fatalf("%d %s", p.status, elementText(p.body, "error_description"))
	}
	if f.docs.hitCount("/oauth/client.json") != 0 {
		t.Fatal("fetched a document with CIMD disabled")
	}
	// Nor can such an id use the token endpoint.
	status, body, _ := postForm(f.e.client(), asIssuer+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {cimdURL}}, "", "")
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("token: %d %v", status, body)
	}
}
