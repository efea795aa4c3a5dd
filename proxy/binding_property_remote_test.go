package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/pages"
)

// bpClock is the fake clock, read concurrently by the proxy.
type bpClock struct{ ns atomic.Int64 }

func (c *bpClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *bpClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *bpClock) add(d time.Duration) { c.set(c.now().Add(d)) }

// bpTokenInfo says whose a token of the fake authorization server is.
type bpTokenInfo struct {
	identity string
	refresh  bool
}

type bpCode struct {
	identity, challenge, redirect, resource string
	lifetime                                int64 // seconds on the fake clock; 0: the answer has no expires_in
}

type bpHit struct{ auth []string }

// bpASEvent is one request to the fake authorization server's token
// endpoint.
type bpASEvent struct {
	grantType string
	presented string // the code or the refresh token
	identity  string // whose the presented code or refresh token is; "" if unknown
	refused   bool
	access    string
	refresh   string
	expiry    time.Time // on the fake clock; zero: no expires_in
	problem   string    // a malformed request
}

// bpRemote plays the remote MCP server (upstream.test), its authorization
// server (as.test) and the MCP clients' metadata documents (client.test),
// as the proxy's transport.
type bpRemote struct {
	clock *bpClock

	mu     sync.Mutex
	tokens map[string]bpTokenInfo // every token the authorization server issued
	serial map[string]int         // identity → number in token names
	gen    map[string]int         // identity → tokens issued so far
	codes  map[string]bpCode      // authorization codes, single use
	refuse map[string]bool        // refresh tokens refused at their next use
	reject map[string]bool        // access tokens the remote MCP server refuses
	hits   map[string][]bpHit     // X-Test-Op → requests the remote MCP server got
	events []bpASEvent
}

func newBPRemote(clock *bpClock) *bpRemote {
	return &bpRemote{clock: clock, tokens: map[string]bpTokenInfo{}, serial: map[string]int{}, gen: map[string]int{},
		codes: map[string]bpCode{}, refuse: map[string]bool{}, reject: map[string]bool{}, hits: map[string][]bpHit{}}
}

func (f *bpRemote) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if req.Body != nil {
		defer req.Body.Close()
	}
	switch req.URL.Host {
	case bpUpstreamHost:
		f.mcp(rec, req)
	case bpASHost:
		f.token(rec, req)
	case bpClientHost:
		f.clientDocument(rec, req)
	default:
		http.Error(rec, "no such host in the test", http.StatusNotFound)
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (f *bpRemote) mcp(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	auth := r.Header.Values("Authorization")
	f.mu.Lock()
	tag := r.Header.Get("X-Test-Op")
	f.hits[tag] = append(f.hits[tag], bpHit{auth: slices.Clone(auth)})
	rejected := len(auth) == 1 && f.reject[strings.TrimPrefix(auth[0], "Bearer ")]
	f.mu.Unlock()
	if rejected {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "token revoked", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
}

func (f *bpRemote) clientDocument(w http.ResponseWriter, r *http.Request) {
	id := "https://" + bpClientHost + r.URL.Path
	if !slices.Contains(bpClients, id) {
		http.NotFound(w, r)
		return
	}
	pages.JSON(w, http.StatusOK, "max-age=86400", map[string]any{
		"client_id": id, "client_name": "client " + r.URL.Path, "redirect_uris": []string{bpRedirect},
		"token_endpoint_auth_method": "none",
	})
}

// issue names and records a new token pair for identity. Caller holds mu.
func (f *bpRemote) issue(identity string) (access, refresh string) {
	if _, ok := f.serial[identity]; !ok {
		f.serial[identity] = len(f.serial) + 1
	}
	f.gen[identity]++
	n, g := f.serial[identity], f.gen[identity]
	access, refresh = fmt.Sprintf("uat-%d.%d", n, g), fmt.Sprintf("urt-%d.%d", n, g)
	f.tokens[access] = bpTokenInfo{identity: identity}
	f.tokens[refresh] = bpTokenInfo{identity: identity, refresh: true}
	return access, refresh
}

// bpHash makes the authorization server's choices deterministic functions
// of the token it is shown, whatever order concurrent refreshes arrive in.
func bpHash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// token is the authorization server's token endpoint; it records every
// request as a bpASEvent.
func (f *bpRemote) token(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" || r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, "not a token request", http.StatusBadRequest)
		return
	}
	form := r.PostForm
	ev := bpASEvent{grantType: form.Get("grant_type")}
	now := f.clock.now()
	resp := map[string]any{"token_type": "Bearer"}
	f.mu.Lock()
	defer func() {
		f.events = append(f.events, ev)
		f.mu.Unlock()
	}()
	if form.Get("client_id") != bpASClientID {
		ev.problem = fmt.Sprintf("client_id %q, want %q", form.Get("client_id"), bpASClientID)
	}
	if form.Get("resource") != bpUpstreamURL {
		ev.problem = fmt.Sprintf("resource %q, want %q", form.Get("resource"), bpUpstreamURL)
	}
	granted := false
	switch ev.grantType {
	case "authorization_code":
		granted = f.exchange(form, &ev, now, resp)
	case "refresh_token":
		granted = f.refresh(form, &ev, now, resp)
	default:
		ev.problem = "grant_type " + ev.grantType
	}
	if !granted {
		ev.refused = true
		pages.JSON(w, http.StatusBadRequest, "no-store", map[string]string{"error": "invalid_grant"})
		return
	}
	resp["access_token"] = ev.access
	if ev.grantType == "authorization_code" {
		resp["refresh_token"] = ev.refresh
	}
	pages.JSON(w, http.StatusOK, "no-store", resp)
}

// exchange redeems the authorization code of form into ev and resp, or
// says it refuses it. Caller holds mu.
func (f *bpRemote) exchange(form url.Values, ev *bpASEvent, now time.Time, resp map[string]any) bool {
	ev.presented = form.Get("code")
	c, ok := f.codes[ev.presented]
	delete(f.codes, ev.presented)
	if !ok {
		ev.problem = "an unknown or used authorization code"
		return false
	}
	ev.identity = c.identity
	switch {
	case form.Get("redirect_uri") != c.redirect:
		ev.problem = fmt.Sprintf("redirect_uri %q, want %q", form.Get("redirect_uri"), c.redirect)
	case c.resource != bpUpstreamURL:
		ev.problem = fmt.Sprintf("the authorization request named resource %q", c.resource)
	case !bpPKCE(form.Get("code_verifier"), c.challenge):
		ev.problem = "the code_verifier does not match the authorization request's code_challenge"
	}
	ev.access, ev.refresh = f.issue(c.identity)
	if c.lifetime > 0 {
		// x/oauth2 counts expires_in from the real clock: shift it so
		// that the expiry lands lifetime seconds after the fake now.
		resp["expires_in"] = c.lifetime + int64(math.Round(time.Until(now).Seconds()))
		ev.expiry = now.Add(time.Duration(c.lifetime) * time.Second)
	}
	return true
}

// refresh answers the refresh token of form into ev and resp, or says it
// refuses it: unknown, or armed to be refused. Caller holds mu.
func (f *bpRemote) refresh(form url.Values, ev *bpASEvent, now time.Time, resp map[string]any) bool {
	ev.presented = form.Get("refresh_token")
	info, ok := f.tokens[ev.presented]
	if !ok || !info.refresh {
		ev.problem = "an unknown refresh token"
		return false
	}
	ev.identity = info.identity
	if f.refuse[ev.presented] {
		delete(f.refuse, ev.presented)
		return false
	}
	h := bpHash(ev.presented)
	access, refresh := f.issue(info.identity)
	ev.access, ev.refresh = access, ev.presented
	if h%4 != 0 { // mostly rotate; sometimes keep the refresh token (RFC 6749 §6)
		ev.refresh = refresh
		resp["refresh_token"] = refresh
	}
	lifetime := int64(10*(12+h/4%48) + 5) // 125s..605s: always past tokens.RefreshSkew
	resp["expires_in"] = lifetime
	ev.expiry = now.Add(time.Duration(lifetime) * time.Second)
	return true
}

func (f *bpRemote) lookup(tok string) (bpTokenInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.tokens[tok]
	return i, ok
}

func (f *bpRemote) takeEvents() []bpASEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events
	f.events = nil
	return ev
}

func (f *bpRemote) takeHits(tag string) []bpHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hits[tag]
	delete(f.hits, tag)
	return h
}

// bpPKCE is the fake authorization server's own S256 check (RFC 7636
// §4.6), not the proxy's.
func bpPKCE(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return len(verifier) >= 43 && base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}
