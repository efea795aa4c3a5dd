package mockas

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/mcp-proxy/mcp-proxy/internal/hostmap"
	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// clock is a fake clock: tests advance it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one run: a CA, a host map, and servers on real-looking names.
type env struct {
	t     *testing.T
	ca    *testca.CA
	hosts *hostmap.Map
	clock *clock
	// transport reaches every mapped name over HTTPS with the run's CA.
	transport *http.Transport
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	hm := hostmap.New()
	tr := netguard.NewTransport(hm.DialContext, netguard.TransportOptions{RootCAs: ca.Pool()})
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, ca: ca, hosts: hm, clock: newClock(), transport: tr}
}

// serve serves h over TLS at https://host (port 443 in URLs, mapped onto a
// loopback listener).
func (e *env) serve(host string, h http.Handler) {
	e.t.Helper()
	leaf, err := e.ca.Issue(host)
	if err != nil {
		e.t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	ts.EnableHTTP2 = true
	ts.StartTLS()
	e.t.Cleanup(ts.Close)
	ap := netip.MustParseAddrPort(ts.Listener.Addr().String())
	e.hosts.Set(host, 443, ap)
}

// config returns a Config whose outbound fetches go through the host map:
// the stack's resolver and last dialer, trusting the CA of the run.
func (e *env) config(issuer string) Config {
	return Config{
		Issuer:   issuer,
		Now:      e.clock.Now,
		Resolver: e.hosts,
		Dial:     e.hosts.DialContext,
		RootCAs:  e.ca.Pool(),
	}
}

// newServer builds a server from cfg and serves it on its issuer's host.
func (e *env) newServer(cfg Config) *Server {
	e.t.Helper()
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	u, _ := url.Parse(cfg.Issuer)
	e.serve(u.Hostname(), s)
	return s
}

// client returns an HTTP client that does not follow redirects.
func (e *env) client() *http.Client {
	return &http.Client{Transport: e.transport, CheckRedirect: netguard.NoRedirects, Timeout: 10 * time.Second}
}

// browser is a headless user agent: a cookie jar, an HTML form parser and
// nothing else. It follows redirects within the authorization server and
// stops at the first redirect anywhere else (the client's redirect URI).
type browser struct {
	e    *env
	http *http.Client
	// asHost is the authorization server's host; redirects elsewhere stop.
	asHost string
}

func (e *env) browser(asHost string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &browser{e: e, asHost: asHost}
	b.http = &http.Client{
		Transport: e.transport, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != b.asHost || len(via) > 5 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b
}

// page is a fetched response with its body read.
type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func (p *page) location() *url.URL {
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		return nil
	}
	return u
}

func (b *browser) do(req *http.Request) (*page, error) {
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readPage(resp)
}

func readPage(resp *http.Response) (*page, error) {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &page{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL}, nil
}

func (b *browser) get(u string) (*page, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.do(req)
}

// form is an HTML form as a headless client sees it.
type form struct {
	action  string
	method  string
	fields  url.Values          // hidden and text inputs with their values
	inputs  map[string]string   // name → type
	buttons []map[string]string // each submit button's name, value, text
}

// forms parses every form of an HTML page.
func forms(body string) ([]*form, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	var out []*form
	var cur *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				cur = &form{action: attr["action"], method: strings.ToUpper(attr["method"]), fields: url.Values{}, inputs: map[string]string{}}
				out = append(out, cur)
			case "input":
				if cur != nil && attr["name"] != "" {
					cur.inputs[attr["name"]] = attr["type"]
					cur.fields.Set(attr["name"], attr["value"])
				}
			case "button":
				if cur != nil {
					btn := map[string]string{"name": attr["name"], "value": attr["value"], "type": attr["type"], "text": textOf(n)}
					cur.buttons = append(cur.buttons, btn)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, nil
}

func textOf(n *html.Node) string {
	var sb strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return strings.TrimSpace(sb.String())
}

// elementText returns the text of the element with the given id.
func elementText(body, id string) string {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return ""
	}
	var found string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == id {
					found = textOf(n)
					return
				}
			}
		}
		for c := n.FirstChild; c != nil && found == ""; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

// onlyForm returns the page's single form.
func onlyForm(p *page) (*form, error) {
	fs, err := forms(p.body)
	if err != nil {
		return nil, err
	}
	if len(fs) != 1 {
		return nil, fmt.Errorf("page %s (status %d) has %d forms, want 1: %.300s", p.url, p.status, len(fs), p.body)
	}
	return fs[0], nil
}

// submit posts f with extra fields set and, when button is not nil, that
// button's name and value.
func (b *browser) submit(f *form, set url.Values, button map[string]string) (*page, error) {
	v := url.Values{}
	for k, vals := range f.fields {
		v[k] = append([]string(nil), vals...)
	}
	for k, vals := range set {
		v[k] = vals
	}
	if button != nil && button["name"] != "" {
		v.Set(button["name"], button["value"])
	}
	req, err := http.NewRequest(f.method, f.action, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// button finds the submit button with the given value (or text when value
// is empty).
func (f *form) button(value string) map[string]string {
	for _, b := range f.buttons {
		if b["value"] == value || (value == "" && b["name"] == "") {
			return b
		}
	}
	return nil
}

// login fills and submits a login page.
func (b *browser) login(p *page, user, password string) (*page, error) {
	f, err := onlyForm(p)
	if err != nil {
		return nil, err
	}
	if f.inputs["username"] == "" || f.inputs["password"] != "password" {
		return nil, fmt.Errorf("not a login form: inputs %v", f.inputs)
	}
	return b.submit(f, url.Values{"username": {user}, "password": {password}}, f.button(""))
}

// decide submits a consent page with decision approve or deny.
func (b *browser) decide(p *page, decision string) (*page, error) {
	f, err := onlyForm(p)
	if err != nil {
		return nil, err
	}
	btn := f.button(decision)
	if btn == nil {
		return nil, fmt.Errorf("consent form has no %q button: %v", decision, f.buttons)
	}
	return b.submit(f, nil, btn)
}

// authorizeAll drives a whole authorization in one browser: GET the
// authorization URL, sign in when asked, approve when asked, and return
// the redirect to the client.
func (b *browser) authorizeAll(authURL, user, password string) (*url.URL, error) {
	p, err := b.get(authURL)
	if err != nil {
		return nil, err
	}
	for range 4 {
		switch {
		case p.status == http.StatusFound:
			return p.location(), nil
		case p.status != http.StatusOK:
			return nil, fmt.Errorf("%s: status %d: %s: %s", p.url, p.status, elementText(p.body, "error"), elementText(p.body, "error_description"))
		case strings.Contains(p.body, `name="password"`):
			p, err = b.login(p, user, password)
		case strings.Contains(p.body, `name="decision"`):
			p, err = b.decide(p, "approve")
		default:
			return nil, fmt.Errorf("unexpected page %s: %.300s", p.url, p.body)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, errors.New("authorization did not finish")
}

// pkce returns a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	sum := sha256.Sum256([]byte(seed))
	verifier = base64.RawURLEncoding.EncodeToString(sum[:]) // 43 characters
	c := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(c[:])
}

// postForm posts a token-style request and decodes the JSON answer.
func postForm(c *http.Client, u string, v url.Values, basicUser, basicPass string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("status %d, body %q: %v", resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, m, nil
}

// cimdHost serves Client ID Metadata Documents on https://client.example.net:
// each path answers with the handler registered for it.
type cimdHost struct {
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	hits     map[string]int
}

func (e *env) cimdHost(host string) *cimdHost {
	c := &cimdHost{handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	e.serve(host, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		h := c.handlers[r.URL.Path]
		c.hits[r.URL.Path]++
		c.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	return c
}

func (c *cimdHost) handle(path string, h http.HandlerFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers[path] = h
}

func (c *cimdHost) hitCount(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[path]
}

// jsonDoc answers with a JSON document and extra headers.
func jsonDoc(doc any, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		_ = json.NewEncoder(w).Encode(doc)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
