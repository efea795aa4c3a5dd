package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// Steps of docs/dynamic-registration.md: MCP clients that register
// themselves at the proxy (RFC 7591).
func init() {
	moreSteps = append(moreSteps, func(w *world, sc *godog.ScenarioContext) {
		sc.Step(`^an MCP client reads the authorization server metadata of "([^"]+)"$`, w.readASMetadata)
		sc.Step(`^the metadata has the documented "([^"]+)"$`, w.metadataHasDocumented)
		sc.Step(`^the metadata has no "([^"]+)"$`, w.metadataLacks)
		sc.Step(`^an MCP client registers at "([^"]+)" with the documented "([^"]+)"$`, w.registerDocumented)
		sc.Step(`^an MCP client registers at "([^"]+)" with the metadata '([^']+)'$`, w.registerBody)
		sc.Step(`^an MCP client registers at "([^"]+)" with (\d+) bytes of metadata$`, w.registerLarge)
		sc.Step(`^an MCP client registers at "([^"]+)" (\d+) times in a row$`, w.registerRepeatedly)
		sc.Step(`^the answer has status (\d+) and has the documented fields "([^"]+)"$`, w.answerHasDocumentedFields)
		sc.Step(`^the answer has a Retry-After header in seconds$`, w.answerHasRetryAfter)
		sc.Step(`^(\w+) connects an MCP client that registers itself with the redirect URI "([^"]+)" to "([^"]+)"$`, w.connectsRegistering)
		sc.Step(`^(\w+) denies an MCP client that registers itself with the redirect URI "([^"]+)" at "([^"]+)"$`, w.deniesRegistering)
		sc.Step(`^(\w+)'s consent page at "([^"]+)" showed the documented "([^"]+)"$`, w.consentPageShowed)
		sc.Step(`^nothing reached "([^"]+)" for (\w+)$`, w.nothingReached)
		sc.Step(`^(\w+)'s browser opens an authorization request of the client id "([^"]+)" with the redirect URI "([^"]+)" at "([^"]+)"$`, w.opensAuthorization)
	})
}

func (w *world) readASMetadata(ctx context.Context, host string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return err
	}
	if err := w.send(req); err != nil {
		return err
	}
	if w.resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the metadata answered %d: %s", w.resp.StatusCode, w.body)
	}
	return nil
}

// metadataHasDocumented checks that every member of the documented JSON
// object is in the last answer with the same value.
func (w *world) metadataHasDocumented(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	var want, got map[string]any
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil {
		return fmt.Errorf("example %q: %v", id, err)
	}
	if err := json.Unmarshal(w.body, &got); err != nil {
		return fmt.Errorf("the answer is not JSON: %v: %s", err, w.body)
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			return fmt.Errorf("%s = %v, the docs say %v", k, got[k], v)
		}
	}
	return nil
}

func (w *world) metadataLacks(member string) error {
	var got map[string]any
	if err := json.Unmarshal(w.body, &got); err != nil {
		return fmt.Errorf("the answer is not JSON: %v: %s", err, w.body)
	}
	if v, ok := got[member]; ok {
		return fmt.Errorf("the metadata has %s = %v", member, v)
	}
	return nil
}

func (w *world) registerAt(ctx context.Context, host, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+"/.mcp-proxy/register", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return w.send(req)
}

func (w *world) registerDocumented(ctx context.Context, host, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	return w.registerAt(ctx, host, e.Body)
}

func (w *world) registerBody(ctx context.Context, host, body string) error {
	return w.registerAt(ctx, host, body)
}

func (w *world) registerLarge(ctx context.Context, host string, n int) error {
	pad := strings.Repeat("a", n)
	return w.registerAt(ctx, host, `{"redirect_uris":["http://127.0.0.1:1/cb"],"client_name":"`+pad+`"}`)
}

// registerRepeatedly sends n valid registrations; the last answer stays.
func (w *world) registerRepeatedly(ctx context.Context, host string, n int) error {
	for i := range n {
		if err := w.registerAt(ctx, host, `{"redirect_uris":["http://127.0.0.1:1/cb"]}`); err != nil {
			return err
		}
		if i < n-1 && w.resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("registration %d of %d answered %d: %s", i+1, n, w.resp.StatusCode, w.body)
		}
	}
	return nil
}

// answerHasDocumentedFields compares the last answer with a documented JSON
// object: the same members, the same values, where "<...>" values only
// need to be present and not empty.
func (w *world) answerHasDocumentedFields(status int, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	if w.resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d: %s", w.resp.StatusCode, status, w.body)
	}
	var want, got map[string]any
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil {
		return fmt.Errorf("example %q: %v", id, err)
	}
	if err := json.Unmarshal(w.body, &got); err != nil {
		return fmt.Errorf("the answer is not JSON: %v: %s", err, w.body)
	}
	for k, v := range want {
		g, ok := got[k]
		if s, isStr := v.(string); isStr && strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
			if !ok || g == "" || g == nil {
				return fmt.Errorf("the answer has no %s", k)
			}
			continue
		}
		if !reflect.DeepEqual(g, v) {
			return fmt.Errorf("%s = %v, the docs say %v", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("the answer has %s, which the docs do not show", k)
		}
	}
	return nil
}

func (w *world) answerHasRetryAfter() error {
	ra := w.resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
		return fmt.Errorf("Retry-After = %q, want a positive number of seconds", ra)
	}
	return nil
}

// registering returns user's MCP client that registers itself, as the
// user's first client (so the other steps about "alice's MCP client" use it).
func (w *world) registering(user, redirectURI string) (*actors.MCPClient, error) {
	if w.st == nil {
		return nil, errors.New("no stack is running")
	}
	a, err := actors.NewRegisteringMCPClient(w.st.Transport(), user, user+"-registered-client", redirectURI)
	if err != nil {
		return nil, err
	}
	if w.actors == nil {
		w.actors = make(map[string]*actors.MCPClient)
	}
	w.actors[user+"/"] = a
	return a, nil
}

func (w *world) connectsRegistering(ctx context.Context, user, redirectURI, endpoint string) error {
	a, err := w.registering(user, redirectURI)
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	return a.Connect(ctx, endpoint)
}

func (w *world) deniesRegistering(ctx context.Context, user, redirectURI, endpoint string) error {
	a, err := w.registering(user, redirectURI)
	if err != nil {
		return err
	}
	a.Browser.DenyOn = stack.ProxyHost
	ctx, cancel := stepContext(ctx)
	defer cancel()
	err = a.Connect(ctx, endpoint)
	if err == nil {
		return errors.New("the MCP client connected although the user denied it")
	}
	if !a.Browser.Did("deny", stack.ProxyHost) {
		return fmt.Errorf("%s never denied the client at %s: %v; the browser saw: %s", user, stack.ProxyHost, err, a.History())
	}
	return nil
}

// consentPageShowed finds the consent page the user answered at host and
// compares its not-verified notice with the documented text.
func (w *world) consentPageShowed(user, host, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	for _, v := range a.Browser.Visits() {
		if v.URL.Host != host || v.Page == nil {
			continue
		}
		got := (&browser.PageError{Body: v.Page}).Element("not-verified")
		got = strings.ReplaceAll(strings.Join(strings.Fields(got), " "), " .", ".")
		if want := strings.Join(strings.Fields(e.Body), " "); got != want {
			return fmt.Errorf("the consent page at %s says\n  %s\nthe docs say\n  %s", host, got, want)
		}
		return nil
	}
	return fmt.Errorf("%s answered no consent page at %s; the browser saw: %s", user, host, a.History())
}

func (w *world) nothingReached(ctx context.Context, host, user string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	for _, v := range a.Browser.Visits() {
		if v.URL.Host == host {
			return fmt.Errorf("%s's browser went to %s: %s", user, host, a.History())
		}
	}
	evs, err := w.events(ctx, host, "authorize")
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		return fmt.Errorf("%s received %d authorization requests", host, len(evs))
	}
	return nil
}

// opensAuthorization sends the user's browser to the proxy's authorization
// endpoint for a client id, as an MCP client would; it must stop at the
// proxy's own error page, never at the redirect URI.
func (w *world) opensAuthorization(ctx context.Context, user, clientID, redirectURI, host string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "state": {"s"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	_, err = a.Browser.Navigate(ctx, "https://"+host+"/.mcp-proxy/authorize?"+q.Encode(), redirectURI)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		return fmt.Errorf("the browser did not stop at an error page (err %v): %s", err, a.History())
	}
	if !strings.HasPrefix(pe.URL, "https://"+host+"/") {
		return fmt.Errorf("the error page is at %s, not on %s", pe.URL, host)
	}
	w.page = pe
	return nil
}
