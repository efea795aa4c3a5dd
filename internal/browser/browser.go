// Package browser is the user in a scenario: a headless HTTP browser with a
// cookie jar that follows redirects and fills in the HTML forms it meets as
// a person would: a sign-in form gets the user's name and password, a
// consent form gets the user's decision.
//
// It parses pages with golang.org/x/net/html and submits exactly the fields
// the form has (hidden fields included), so a page that a person could not
// use is a page the browser cannot use either.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/html"
)

// maxSteps bounds one navigation, so a redirect loop fails instead of
// spinning.
const maxSteps = 30

// Visit is one page the browser loaded or one form it submitted.
type Visit struct {
	Method string
	URL    *url.URL
	Status int
	// Action is what the browser did on the page: "redirect", "sign-in",
	// "approve", "deny" or "stop".
	Action string
	// Page is the HTML of a page the browser approved or denied on.
	Page []byte
}

// Browser is one person's browser.
type Browser struct {
	Username, Password string
	// Approve decides consent pages: true clicks approve, false deny.
	Approve bool
	// DenyOn, when set, is the one host whose consent pages the browser
	// denies, whatever Approve says.
	DenyOn string

	client *http.Client
	mu     sync.Mutex
	visits []Visit
}

// New returns a browser for a user that reaches the network through
// transport.
func New(transport http.RoundTripper, username, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{
		Username: username,
		Password: password,
		Approve:  true,
		client: &http.Client{
			Transport:     transport,
			Jar:           jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// SetTransport changes how the browser reaches the network from its next
// request on; its cookies stay.
func (b *Browser) SetTransport(t http.RoundTripper) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.client.Transport = t
}

// Visits returns every page so far.
func (b *Browser) Visits() []Visit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Visit(nil), b.visits...)
}

func (b *Browser) record(v Visit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.visits = append(b.visits, v)
}

// Did reports whether the browser took action on a page of host.
func (b *Browser) Did(action, host string) bool {
	for _, v := range b.Visits() {
		if v.Action == action && v.URL.Host == host {
			return true
		}
	}
	return false
}

// PageError is a page the browser could not get past.
type PageError struct {
	URL    string
	Status int
	Text   string
	// Body is the page's HTML.
	Body []byte
}

// Element returns the text of the element with the given id on the page,
// or "".
func (e *PageError) Element(id string) string {
	doc, err := html.Parse(strings.NewReader(string(e.Body)))
	if err != nil {
		return ""
	}
	var found *html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode {
			if v, ok := attr(n, "id"); ok && v == id {
				found = n
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		return ""
	}
	return pageText(found, nil)
}

func (e *PageError) Error() string {
	return fmt.Sprintf("browser stuck at %s (HTTP %d): %s", e.URL, e.Status, e.Text)
}

// Navigate opens start and keeps going (redirects, sign-in, consent) until
// a redirect leads to a URL that begins with stop, which it returns without
// loading: that is where the MCP client takes over.
func (b *Browser) Navigate(ctx context.Context, start, stop string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start, nil)
	if err != nil {
		return nil, err
	}
	for range maxSteps {
		if strings.HasPrefix(req.URL.String(), stop) {
			b.record(Visit{Method: req.Method, URL: req.URL, Action: "stop"})
			return req.URL, nil
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s: %w", req.Method, req.URL, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			next, err := req.URL.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("browser: bad redirect %q from %s", loc, req.URL)
			}
			b.record(Visit{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Action: "redirect"})
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return nil, err
			}
			continue
		}
		next, action, err := b.act(ctx, req.URL, resp.StatusCode, body)
		v := Visit{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Action: action}
		if action == "approve" || action == "deny" {
			v.Page = body
		}
		b.record(v)
		if err != nil {
			return nil, err
		}
		req = next
	}
	return nil, errors.New("browser: too many steps; a redirect loop?")
}

// act finds the page's form and submits it as the user would.
func (b *Browser) act(ctx context.Context, at *url.URL, status int, body []byte) (*http.Request, string, error) {
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil || status != http.StatusOK {
		return nil, "", &PageError{URL: at.String(), Status: status, Text: pageText(doc, body), Body: body}
	}
	f := findForm(doc)
	if f == nil {
		return nil, "", &PageError{URL: at.String(), Status: status, Text: "no form on the page: " + pageText(doc, body), Body: body}
	}
	values := url.Values{}
	for _, in := range f.inputs {
		values.Set(in.name, in.value)
	}
	var action string
	switch {
	case f.hasPassword:
		values.Set("username", b.Username)
		values.Set("password", b.Password)
		if _, ok := values["login"]; ok { // Dex names the field "login"
			values.Set("login", b.Username)
		}
		action = "sign-in"
		if btn := f.button(""); btn != nil && btn.name != "" {
			values.Set(btn.name, btn.value)
		}
	default:
		want := "approve"
		action = "approve"
		if !b.Approve || b.DenyOn != "" && at.Host == b.DenyOn {
			want, action = "deny", "deny"
		}
		btn := f.button(want)
		if btn == nil {
			return nil, "", &PageError{URL: at.String(), Status: status, Text: fmt.Sprintf("a form without a %q button: %s", want, pageText(doc, body)), Body: body}
		}
		values.Set(btn.name, btn.value)
	}
	target, err := at.Parse(f.action)
	if err != nil {
		return nil, "", fmt.Errorf("browser: bad form action %q", f.action)
	}
	method := strings.ToUpper(f.method)
	var req *http.Request
	if method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(values.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		target.RawQuery = values.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	}
	return req, action, err
}

type input struct{ name, value, kind string }

type form struct {
	action, method string
	inputs         []input
	buttons        []input
	hasPassword    bool
}

// button returns the submit button with value want, or the first submit
// button when want is "".
func (f *form) button(want string) *input {
	for i := range f.buttons {
		if want == "" || f.buttons[i].value == want {
			return &f.buttons[i]
		}
	}
	return nil
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val, true
		}
	}
	return "", false
}

// findForm returns the page's first form.
func findForm(doc *html.Node) *form {
	if fs := findForms(doc); len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// findForms returns every form of the page, in order.
func findForms(doc *html.Node) []*form {
	var forms []*form
	var walk func(n *html.Node, in *form)
	walk = func(n *html.Node, in *form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, _ := attr(n, "action")
				method, _ := attr(n, "method")
				if method == "" {
					method = "get"
				}
				in = &form{action: action, method: method}
				forms = append(forms, in)
			case "input":
				if in != nil {
					name, _ := attr(n, "name")
					value, _ := attr(n, "value")
					kind, _ := attr(n, "type")
					kind = strings.ToLower(kind)
					switch kind {
					case "submit":
						in.buttons = append(in.buttons, input{name, value, kind})
					case "password":
						in.hasPassword = true
						in.inputs = append(in.inputs, input{name, value, kind})
					default:
						if name != "" {
							in.inputs = append(in.inputs, input{name, value, kind})
						}
					}
				}
			case "button":
				if in != nil {
					kind, ok := attr(n, "type")
					if !ok || strings.EqualFold(kind, "submit") {
						name, _ := attr(n, "name")
						value, _ := attr(n, "value")
						in.buttons = append(in.buttons, input{name, value, "submit"})
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc, nil)
	return forms
}

// pageText returns a short readable summary of a page for error messages.
func pageText(doc *html.Node, body []byte) string {
	if doc == nil {
		return strings.TrimSpace(string(body))
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "style" || n.Data == "script") {
			return
		}
		if n.Type == html.TextNode {
			if t := strings.TrimSpace(n.Data); t != "" {
				b.WriteString(t + " ")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	s := strings.TrimSpace(b.String())
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// Page is a page the browser loaded.
type Page struct {
	URL    *url.URL
	Status int
	Body   []byte
}

// Send sends one request with the browser's cookies and returns the
// answer as it came, a redirect included, without following it.
func (b *Browser) Send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	b.record(Visit{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Action: "view"})
	return resp, body, err
}

// Get loads u with the given Accept header, following redirects, and
// returns the final page.
func (b *Browser) Get(ctx context.Context, u, accept string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return b.follow(req)
}

// follow sends req and follows redirects (GET) to a page that is not one.
func (b *Browser) follow(req *http.Request) (*Page, error) {
	for range maxSteps {
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s: %w", req.Method, req.URL, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			b.record(Visit{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Action: "view"})
			return &Page{URL: req.URL, Status: resp.StatusCode, Body: body}, nil
		}
		b.record(Visit{Method: req.Method, URL: req.URL, Status: resp.StatusCode, Action: "redirect"})
		next, err := req.URL.Parse(loc)
		if err != nil {
			return nil, err
		}
		accept := req.Header.Get("Accept")
		if req, err = http.NewRequestWithContext(req.Context(), http.MethodGet, next.String(), nil); err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
	}
	return nil, errors.New("browser: too many redirects")
}

// Click loads the page at u and submits the form holding the submit button
// with value button (the nth such form, counting from 0), as a person
// clicking it would, then follows redirects to the resulting page.
func (b *Browser) Click(ctx context.Context, u, button string, nth int) (*Page, error) {
	page, err := b.Get(ctx, u, "text/html")
	if err != nil {
		return nil, err
	}
	doc, err := html.Parse(strings.NewReader(string(page.Body)))
	if err != nil {
		return nil, err
	}
	var forms []*form
	for _, f := range findForms(doc) {
		if f.button(button) != nil {
			forms = append(forms, f)
		}
	}
	if nth >= len(forms) {
		return nil, &PageError{URL: u, Status: page.Status, Text: fmt.Sprintf("no form with a %q button number %d: %s", button, nth, pageText(doc, page.Body)), Body: page.Body}
	}
	f := forms[nth]
	values := url.Values{}
	for _, in := range f.inputs {
		values.Set(in.name, in.value)
	}
	btn := f.button(button)
	values.Set(btn.name, btn.value)
	target, err := page.URL.Parse(f.action)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(f.method), target.String(), strings.NewReader(values.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.follow(req)
}
