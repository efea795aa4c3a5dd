package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// world is a set of fake servers under real-looking names, all served by
// one TLS listener; it records every request it receives.
type world struct {
	t       *testing.T
	mu      sync.Mutex
	routes  map[string]http.HandlerFunc // "host/path" → handler
	seen    []string
	dialed  []string
	client  *http.Client
	addr    netip.AddrPort
	private map[string]netip.AddrPort
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"mcp.test", "as.test", "other.test", "evil.test"}
	leaf, err := ca.Issue(names...)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, routes: make(map[string]http.HandlerFunc), private: make(map[string]netip.AddrPort)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		key := r.Host + r.URL.Path
		w.mu.Lock()
		w.seen = append(w.seen, key)
		h := w.routes[key]
		w.mu.Unlock()
		if h == nil {
			http.NotFound(rw, r)
			return
		}
		h(rw, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	w.addr = netip.MustParseAddrPort(srv.Listener.Addr().String())
	g := &netguard.Guard{Resolver: w, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.mu.Lock()
		w.dialed = append(w.dialed, addr)
		w.mu.Unlock()
		if !netip.MustParseAddrPort(addr).Addr().IsLoopback() {
			return nil, fmt.Errorf("test: refusing to dial %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	g.Trust("mcp.test", "as.test", "other.test") // stand-ins for configured or flagged hosts
	w.client = &http.Client{
		Transport:     netguard.NewTransport(g.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()}),
		CheckRedirect: netguard.NoRedirects,
	}
	return w
}

// Resolve maps every test name to the one listener, except names mapped
// to private addresses.
func (w *world) Resolve(_ context.Context, host string, _ uint16) ([]netip.AddrPort, error) {
	if a, ok := w.private[host]; ok {
		return []netip.AddrPort{a}, nil
	}
	if strings.HasSuffix(host, ".test") {
		return []netip.AddrPort{w.addr}, nil
	}
	return nil, errors.New("unknown host")
}

func (w *world) handle(hostPath string, h http.HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.routes[hostPath] = h
}

func (w *world) json(hostPath string, v any) {
	w.handle(hostPath, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(v)
	})
}

func (w *world) saw(hostPath string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if s == hostPath {
			return true
		}
	}
	return false
}

// challenge makes the MCP endpoint answer 401 with the given header.
func (w *world) challenge(header string) {
	w.handle("mcp.test/mcp", func(rw http.ResponseWriter, _ *http.Request) {
		if header != "" {
			rw.Header().Set("WWW-Authenticate", header)
		}
		rw.WriteHeader(http.StatusUnauthorized)
	})
}

func asMeta(issuer string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + "/authorize",
		"token_endpoint":                        issuer + "/token",
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"client_id_metadata_document_supported": true,
	}
}

// discoverMCPURL is the remote MCP server every discoverCases case
// discovers.
const discoverMCPURL = "https://mcp.test/mcp"

// discoverCase is one discovery against a world of fake servers: it finds
// what want checks, or fails with wantErr.
type discoverCase struct {
	name       string
	setup      func(w *world)
	fallback   string
	allow      func(string) error
	want       func(t *testing.T, d *Discovery)
	wantErr    string
	mustNotSee []string // host/path the discovery must not fetch
}

var discoverCases = []discoverCase{
	{
		// RFC 9449 §7.1: a server that wants DPoP-bound tokens challenges
		// with the DPoP scheme, whose parameters are read as a Bearer
		// challenge's are.
		name: "a DPoP challenge asks for DPoP-bound tokens and names the metadata",
		setup: func(w *world) {
			w.challenge(`DPoP algs="ES256", resource_metadata="https://mcp.test/custom/prm.json", scope="read"`)
			w.json("mcp.test/custom/prm.json", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.DPoP || d.MetadataURL != "https://mcp.test/custom/prm.json" || strings.Join(d.Scopes, " ") != "read" {
				t.Errorf("got %+v, want DPoP with the challenge's metadata and scope", d)
			}
		},
	},
	{
		name: "metadata that requires DPoP-bound tokens",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}, "dpop_bound_access_tokens_required": true})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.DPoP {
				t.Errorf("got %+v, want DPoP", d)
			}
		},
	},
	{
		name: "metadata that takes ES256 proofs",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}, "dpop_signing_alg_values_supported": []string{"RS256", "ES256"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.DPoP {
				t.Errorf("got %+v, want DPoP", d)
			}
		},
	},
	{
		name: "metadata from the challenge's resource_metadata",
		setup: func(w *world) {
			w.challenge(`Bearer resource_metadata="https://mcp.test/custom/prm.json", scope="read write"`)
			w.json("mcp.test/custom/prm.json", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}, "scopes_supported": []string{"x"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.MetadataURL != "https://mcp.test/custom/prm.json" || d.Resource != discoverMCPURL || d.Issuer != "https://as.test" {
				t.Errorf("got %+v", d)
			}
			if strings.Join(d.Scopes, " ") != "read write" {
				t.Errorf("scopes = %v, want the challenge's", d.Scopes)
			}
			if !d.SupportsCIMD() {
				t.Error("CIMD support not read")
			}
			if d.DPoP {
				t.Error("a Bearer challenge and plain metadata asked for DPoP")
			}
		},
	},
	{
		name: "path-suffixed metadata, scopes_supported, OIDC discovery",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test/tenant"}, "scopes_supported": []string{"x"}})
			w.json("as.test/.well-known/openid-configuration/tenant", asMeta("https://as.test/tenant"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.Issuer != "https://as.test/tenant" || strings.Join(d.Scopes, " ") != "x" {
				t.Errorf("got %+v", d)
			}
		},
	},
	{
		name: "root metadata describes the origin",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource", map[string]any{"resource": "https://mcp.test", "authorization_servers": []string{"https://as.test"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.Resource != "https://mcp.test" {
				t.Errorf("resource = %q, want the origin", d.Resource)
			}
		},
	},
	{
		name:    "no metadata but a challenge",
		setup:   func(w *world) { w.challenge(`Bearer`) },
		wantErr: "The remote MCP server https://mcp.test/mcp asks for authorization but publishes no protected resource metadata (tried https://mcp.test/.well-known/oauth-protected-resource/mcp and https://mcp.test/.well-known/oauth-protected-resource). Set mcp.server.authorization_server_url to its authorization server.",
	},
	{
		name: "an answer without a token, no metadata: no OAuth",
		setup: func(w *world) {
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.NoAuth {
				t.Errorf("got %+v, want NoAuth", d)
			}
		},
	},
	{
		// A 400 or 404 proves nothing: never "no authorization" from it.
		name: "no metadata, no challenge, no success: an error",
		setup: func(w *world) {
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusBadRequest) })
		},
		wantErr: "The remote MCP server https://mcp.test/mcp answered 400 to an MCP client's first request without a token, with no challenge, and publishes no protected resource metadata (tried https://mcp.test/.well-known/oauth-protected-resource/mcp and https://mcp.test/.well-known/oauth-protected-resource), so the proxy cannot tell whether it needs authorization. Check the route's to, or set mcp.server.authorization_server_url.",
	},
	{
		// The spec lets a server answer GET with 405 and challenge POST
		// only; the challenge names metadata at a place of its own.
		name: "a challenge on POST only, metadata only where it points",
		setup: func(w *world) {
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					rw.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				rw.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://mcp.test/custom/prm", scope="mcp:basic"`)
				rw.WriteHeader(http.StatusUnauthorized)
			})
			w.json("mcp.test/custom/prm", map[string]any{"resource": "https://mcp.test/mcp", "authorization_servers": []string{"https://as.test"}, "scopes_supported": []string{"mcp:basic", "mcp:admin"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.NoAuth || d.Issuer != "https://as.test" || strings.Join(d.Scopes, " ") != "mcp:basic" {
				t.Errorf("got %+v, want as.test with the challenge's scope mcp:basic", d)
			}
		},
	},
	{
		// A server that answers every GET with an event stream (a
		// catch-all handler, as the official conformance suite's
		// servers have) publishes no metadata at the well-known
		// locations; it answered without a token, so it needs none.
		name: "event streams at the well-known locations are no metadata",
		setup: func(w *world) {
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
			sse := func(rw http.ResponseWriter, _ *http.Request) {
				rw.Header().Set("Content-Type", "text/event-stream")
				rw.WriteHeader(http.StatusOK)
				_, _ = rw.Write([]byte(": stream\n\n"))
			}
			w.handle("mcp.test/.well-known/oauth-protected-resource/mcp", sse)
			w.handle("mcp.test/.well-known/oauth-protected-resource", sse)
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.NoAuth {
				t.Errorf("got %+v, want NoAuth", d)
			}
		},
	},
	{
		// SEP-2575: a server that refuses the version of the first
		// request with -32022 names the ones it supports; a 2026-07-28
		// client asks again with one of them. An initialize, without
		// the per-request _meta, would be a request the server did not
		// ask for.
		name: "server/discover again with a version the server names in its -32022 answer",
		setup: func(w *world) {
			var mu sync.Mutex
			refused := false
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if r.Header.Get("Mcp-Method") != "server/discover" {
					w.t.Errorf("the probe sent %s (MCP-Protocol-Version %s) after the server named the versions it supports", r.Header.Get("Mcp-Method"), r.Header.Get("MCP-Protocol-Version"))
					rw.WriteHeader(http.StatusBadRequest)
					return
				}
				if !refused {
					refused = true
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusBadRequest)
					_, _ = rw.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":"2026-07-28"}}}`))
					return
				}
				rw.Header().Set("Content-Type", "application/json")
				_, _ = rw.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28"],"capabilities":{},"serverInfo":{"name":"s","version":"1"}}}`))
			})
		},
		want: func(t *testing.T, d *Discovery) {
			if !d.NoAuth {
				t.Errorf("got %+v, want NoAuth", d)
			}
		},
	},
	{
		// A 2026-07-28 server checks the request's shape first: an
		// initialize without its headers gets 400, server/discover the
		// challenge. An older server is the other way round.
		name: "server/discover first, initialize when that proves nothing",
		setup: func(w *world) {
			w.handle("mcp.test/mcp", func(rw http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Mcp-Method") != "initialize" || r.Header.Get("MCP-Protocol-Version") != "2025-11-25" {
					rw.WriteHeader(http.StatusBadRequest)
					return
				}
				rw.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://mcp.test/custom/prm"`)
				rw.WriteHeader(http.StatusUnauthorized)
			})
			w.json("mcp.test/custom/prm", map[string]any{"resource": "https://mcp.test/mcp", "authorization_servers": []string{"https://as.test"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.NoAuth || d.Issuer != "https://as.test" {
				t.Errorf("got %+v, want as.test from the initialize challenge", d)
			}
		},
	},
	{
		name:     "no metadata, configured authorization server",
		fallback: "https://as.test",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		want: func(t *testing.T, d *Discovery) {
			if d.Resource != discoverMCPURL || d.Issuer != "https://as.test" {
				t.Errorf("got %+v", d)
			}
		},
	},
	{
		name: "metadata for another resource is not used",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": "https://evil.test/mcp", "authorization_servers": []string{"https://as.test"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
		},
		wantErr:    `The protected resource metadata at https://mcp.test/.well-known/oauth-protected-resource/mcp describes "https://evil.test/mcp", not https://mcp.test/mcp; the proxy does not use it.`,
		mustNotSee: []string{"as.test/.well-known/oauth-authorization-server"},
	},
	{
		name: "issuer mismatch",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}})
			w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://other.test"))
		},
		wantErr: `The authorization server https://as.test is unusable: metadata issuer "https://other.test" does not match issuer URL "https://as.test"`,
	},
	{
		name: "no PKCE S256",
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://as.test"}})
			m := asMeta("https://as.test")
			m["code_challenge_methods_supported"] = []string{"plain"}
			w.json("as.test/.well-known/oauth-authorization-server", m)
		},
		wantErr: "The authorization server https://as.test does not support PKCE with S256 (code_challenge_methods_supported: [plain]); the proxy will not authorize without it.",
	},
	{
		name: "authorization server outside the allowlist",
		allow: func(h string) error {
			if h == "mcp.test" {
				return nil
			}
			return fmt.Errorf("its host %s is not in allowed_metadata_domains", h)
		},
		setup: func(w *world) {
			w.challenge(`Bearer`)
			w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": discoverMCPURL, "authorization_servers": []string{"https://other.test"}})
		},
		wantErr:    "The proxy refused the authorization server https://other.test: its host other.test is not in allowed_metadata_domains",
		mustNotSee: []string{"other.test/.well-known/oauth-authorization-server"},
	},
	{
		name: "a hint that resolves to a private address is refused before any dial",
		setup: func(w *world) {
			w.private["evil.test"] = netip.MustParseAddrPort("10.0.0.7:443")
			w.challenge(`Bearer resource_metadata="https://evil.test/prm"`)
		},
		wantErr: "The protected resource metadata at https://evil.test/prm could not be read: refused to connect to evil.test: it resolves to 10.0.0.7, a private address, and it is not a host named in the configuration",
	},
}

func TestDiscover(t *testing.T) {
	for _, tt := range discoverCases {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.setup(w)
			c := &Discoverer{HTTP: w.client, AllowHost: tt.allow}
			d, hit, err := c.Discover(context.Background(), discoverMCPURL, tt.fallback)
			if tt.wantErr != "" {
				checkDiscoverErr(t, err, tt.wantErr)
			} else {
				checkDiscovered(t, d, hit, err, tt.want)
			}
			checkDiscoverFetches(t, w, tt.mustNotSee)
		})
	}
}

// checkDiscoverErr stops the test unless the discovery failed with want.
func checkDiscoverErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n  %v\nwant\n  %s", err, want)
	}
}

// checkDiscovered stops the test unless the discovery succeeded, and
// checks that it was no cache hit and what it found.
func checkDiscovered(t *testing.T, d *Discovery, hit bool, err error, want func(t *testing.T, d *Discovery)) {
	t.Helper()
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if hit {
		t.Error("the first discovery was a cache hit")
	}
	want(t, d)
}

// checkDiscoverFetches checks that the discovery fetched none of
// mustNotSee and dialed no private address.
func checkDiscoverFetches(t *testing.T, w *world, mustNotSee []string) {
	t.Helper()
	for _, p := range mustNotSee {
		if w.saw(p) {
			t.Errorf("%s was fetched", p)
		}
	}
	for _, a := range w.dialed {
		if !netip.MustParseAddrPort(a).Addr().IsLoopback() {
			t.Errorf("dialed %s: the guard let a private address through", a)
		}
	}
}

func TestDiscoverCache(t *testing.T) {
	w := newWorld(t)
	w.challenge(`Bearer`)
	w.json("mcp.test/.well-known/oauth-protected-resource/mcp", map[string]any{"resource": "https://mcp.test/mcp", "authorization_servers": []string{"https://as.test"}})
	w.json("as.test/.well-known/oauth-authorization-server", asMeta("https://as.test"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Discoverer{HTTP: w.client, Now: func() time.Time { return now }}
	ctx := context.Background()
	if _, hit, err := c.Discover(ctx, "https://mcp.test/mcp", ""); err != nil || hit {
		t.Fatalf("first: hit %v, err %v", hit, err)
	}
	if _, hit, _ := c.Discover(ctx, "https://mcp.test/mcp", ""); !hit {
		t.Error("second discovery within the TTL was not a cache hit")
	}
	now = now.Add(DiscoveryTTL)
	if _, hit, _ := c.Discover(ctx, "https://mcp.test/mcp", ""); hit {
		t.Error("a discovery older than DiscoveryTTL was reused")
	}
	c.Invalidate("https://mcp.test/mcp")
	if _, hit, _ := c.Discover(ctx, "https://mcp.test/mcp", ""); hit {
		t.Error("an invalidated discovery was reused")
	}
}
