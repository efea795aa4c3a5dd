package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// Steps of the "Which MCP clients connect, and how" page: clients that
// sign client assertions, and the proxy's answers to authorization
// requests it must not redirect.

func init() {
	moreSteps = append(moreSteps, func(w *world, sc *godog.ScenarioContext) {
		sc.Step(`^(\w+)'s MCP client is "([^"]+)", which signs client assertions$`, func(user, name string) error {
			return w.pkjwtClient(user, name+"-pkjwt")
		})
		sc.Step(`^(\w+)'s MCP client is "([^"]+)", which signs client assertions with the keys in its document$`, func(user, name string) error {
			return w.pkjwtClient(user, name+"-pkjwt-inline")
		})
		sc.Step(`^(\w+)'s MCP client rotates its key$`, func(ctx context.Context, user string) error {
			a, err := w.assertions(user)
			if err != nil {
				return err
			}
			key, kid, err := w.st.RotateClientKey(ctx, w.actors[user+"/"].Name)
			if err != nil {
				return err
			}
			a.SetKey(key, kid)
			return nil
		})
		sc.Step(`^(\w+)'s MCP client signs its client assertions (with another key|for another server|that expired|not at all)$`, w.assertionFault)
		sc.Step(`^(\w+)'s MCP client refreshes its token$`, func(ctx context.Context, user string) error { return w.refresh(ctx, user, false) })
		sc.Step(`^(\w+)'s MCP client refreshes its token with its last client assertion again$`, func(ctx context.Context, user string) error { return w.refresh(ctx, user, true) })
		sc.Step(`^the token endpoint answered (\w+)'s MCP client with status (\d+) and the documented error "([^"]+)"$`, w.tokenEndpointAnswered)
		sc.Step(`^the token endpoint authenticated (\w+)'s MCP client by its client assertion$`, w.tokenEndpointAccepted)
		sc.Step(`^a browser opens an authorization request at "([^"]+)" from the MCP client "([^"]+)" with response_type "([^"]+)"$`, func(ctx context.Context, host, client, rt string) error {
			return w.openAuthorize(ctx, host, client, "", rt)
		})
		sc.Step(`^a browser opens an authorization request at "([^"]+)" from the MCP client "([^"]+)" with the redirect URI "([^"]+)" and response_type "([^"]+)"$`, w.openAuthorize)
		sc.Step(`^(\w+)'s browser opens an authorization request at "([^"]+)" from (?:her|his|their) MCP client with response_type "([^"]+)"$`, w.userOpensAuthorize)
		sc.Step(`^the proxy answers on its own page with the documented error "([^"]+)"$`, func(id string) error { return w.ownPage("", id) })
		sc.Step(`^the proxy answers on its own page with the error "([^"]+)" ending in the documented "([^"]+)"$`, w.ownPage)
		sc.Step(`^the proxy sends the browser to the redirect URI of the MCP client "([^"]+)" with the error "([^"]+)"$`, w.redirectedWithError)
		sc.Step(`^the authorization server metadata at "([^"]+)" has the documented "([^"]+)"$`, w.metadataHas)
	})
}

// pkjwtClient makes user's MCP client one that authenticates with
// private_key_jwt: the document of client.example.net/NAME (a name ending
// in -pkjwt or -pkjwt-inline), whose key the stack derived for this run. It is the user's MCP client for the
// steps that follow.
func (w *world) pkjwtClient(user, name string) error {
	if w.st == nil {
		return errors.New("no stack is running")
	}
	if _, ok := w.actors[user+"/"]; ok {
		return fmt.Errorf("%s already has an MCP client", user)
	}
	key, err := w.st.ClientSigningKey(name)
	if err != nil {
		return err
	}
	a, err := actors.NewPrivateKeyJWTClient(w.st.Transport(), user, name, w.st.ClientMetadataURL(name), w.st.ClientRedirectURL(name), key, clientmeta.KeyID)
	if err != nil {
		return err
	}
	if w.actors == nil {
		w.actors = make(map[string]*actors.MCPClient)
	}
	w.actors[user+"/"] = a
	return nil
}

func (w *world) assertions(user string) (*actors.Assertions, error) {
	a, ok := w.actors[user+"/"]
	if !ok || a.Assertions == nil {
		return nil, fmt.Errorf("%s's MCP client does not sign client assertions", user)
	}
	return a.Assertions, nil
}

func (w *world) assertionFault(user, how string) error {
	as, err := w.assertions(user)
	if err != nil {
		return err
	}
	as.SetFault(map[string]actors.Fault{
		"with another key":   actors.FaultOtherKey,
		"for another server": actors.FaultAudience,
		"that expired":       actors.FaultExpired,
		"not at all":         actors.FaultNoAssertion,
	}[how])
	return nil
}

func (w *world) refresh(ctx context.Context, user string, replay bool) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	if a.Assertions == nil {
		return fmt.Errorf("%s's MCP client does not sign client assertions", user)
	}
	if replay {
		a.Assertions.SetFault(actors.FaultReplay)
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	err = a.Refresh(ctx)
	if replay {
		if err == nil {
			return errors.New("the refresh with a replayed client assertion succeeded")
		}
		return nil
	}
	return err
}

func (w *world) tokenEndpointAnswered(user string, status int, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	as, err := w.assertions(user)
	if err != nil {
		return err
	}
	ans, ok := as.LastAnswer()
	if !ok {
		return fmt.Errorf("%s's MCP client sent no token request", user)
	}
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		RequestID   string `json:"request_id"`
	}
	if err := json.Unmarshal(ans.Body, &b); err != nil || ans.Status != status {
		return fmt.Errorf("the token endpoint answered %d %s, want %d and a JSON error", ans.Status, ans.Body, status)
	}
	if got, want := b.Error+": "+b.Description, strings.TrimSpace(e.Body); got != want {
		return fmt.Errorf("the token endpoint says\n  %s\nthe docs say\n  %s", got, want)
	}
	if b.RequestID == "" || !strings.Contains(w.st.ProxyLog(), `"request_id":"`+b.RequestID+`"`) {
		return fmt.Errorf("the proxy log has no line with the answer's request id %q", b.RequestID)
	}
	return nil
}

func (w *world) tokenEndpointAccepted(user string) error {
	as, err := w.assertions(user)
	if err != nil {
		return err
	}
	ans, ok := as.LastAnswer()
	if !ok || ans.Status != http.StatusOK {
		return fmt.Errorf("the token endpoint's last answer: %d %s", ans.Status, ans.Body)
	}
	return nil
}

// openAuthorize sends the request a browser sends when an MCP client
// starts an authorization, without following where the answer leads.
// redirect "" is the first redirect URI of the client's document.
func (w *world) openAuthorize(ctx context.Context, host, client, redirect, responseType string) error {
	req, err := w.authorizeRequest(ctx, host, client, redirect, responseType)
	if err != nil {
		return err
	}
	return w.send(req)
}

// userOpensAuthorize sends the authorization request of user's MCP client
// from user's browser (signed in, having approved the client), keeping the
// answer without following it.
func (w *world) userOpensAuthorize(ctx context.Context, user, host, responseType string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	req, err := w.authorizeRequest(ctx, host, a.Name, "", responseType)
	if err != nil {
		return err
	}
	resp, body, err := a.Browser.Send(req)
	if err != nil {
		return err
	}
	w.resp, w.body = resp, body
	return nil
}

// authorizeRequest is a browser's authorization request of the MCP client
// whose document is client.example.net's client, to redirect ("" for the
// document's first redirect URI).
func (w *world) authorizeRequest(ctx context.Context, host, client, redirect, responseType string) (*http.Request, error) {
	if w.st == nil {
		return nil, errors.New("no stack is running")
	}
	if redirect == "" {
		doc, err := clientmeta.Document(stack.ClientHost, "", client)
		if err != nil {
			return nil, err
		}
		redirect = doc["redirect_uris"].([]string)[0]
	}
	q := url.Values{
		"client_id": {w.st.ClientMetadataURL(client)}, "redirect_uri": {redirect}, "response_type": {responseType},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "state": {"st-1"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.mcp-proxy/authorize?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	return req, nil
}

// ownPage checks that the last answer is the proxy's error page, not a
// redirect: its code, and a message that is the documented text (code "")
// or ends with it, and a request id that the log has.
func (w *world) ownPage(code, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	want := strings.TrimSpace(e.Body)
	if loc := w.resp.Header.Get("Location"); loc != "" || w.resp.StatusCode/100 != 4 {
		return fmt.Errorf("the proxy answered %d (Location %q), want its own error page", w.resp.StatusCode, loc)
	}
	if ct := w.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		return fmt.Errorf("the answer is %s, not the proxy's page", ct)
	}
	page := &browser.PageError{Status: w.resp.StatusCode, Body: w.body}
	got := page.Element("code") + ": " + page.Element("message")
	switch {
	case code == "" && got != want:
		return fmt.Errorf("the page says\n  %s\nthe docs say\n  %s", got, want)
	case code != "" && (page.Element("code") != code || !strings.HasSuffix(page.Element("message"), want)):
		return fmt.Errorf("the page says\n  %s\nwant the code %s and a message ending in\n  %s", got, code, want)
	}
	rid := page.Element("request-id")
	if rid == "" || rid != w.resp.Header.Get("X-Request-Id") {
		return fmt.Errorf("the page's request id %q is not the answer's (%q)", rid, w.resp.Header.Get("X-Request-Id"))
	}
	return w.loggedRequestID(context.Background(), rid)
}

func (w *world) redirectedWithError(client, code string) error {
	doc, err := clientmeta.Document(stack.ClientHost, "", client)
	if err != nil {
		return err
	}
	redirect := doc["redirect_uris"].([]string)[0]
	loc, err := url.Parse(w.resp.Header.Get("Location"))
	if err != nil || w.resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirect+"?") {
		return fmt.Errorf("the proxy answered %d with Location %q, want a redirect to %s", w.resp.StatusCode, w.resp.Header.Get("Location"), redirect)
	}
	q := loc.Query()
	if q.Get("error") != code || q.Get("state") != "st-1" || q.Get("iss") != "https://"+stack.ProxyHost {
		return fmt.Errorf("the redirect carries error=%q state=%q iss=%q, want %q, st-1 and the proxy's issuer", q.Get("error"), q.Get("state"), q.Get("iss"), code)
	}
	return nil
}

func (w *world) metadataHas(ctx context.Context, target, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil {
		return fmt.Errorf("example %q is not a JSON object: %v", id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if err := w.send(req); err != nil {
		return err
	}
	var got map[string]any
	if err := json.Unmarshal(w.body, &got); err != nil || w.resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d %s", target, w.resp.StatusCode, w.body)
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			return fmt.Errorf("%s has %s = %v, the docs say %v", target, k, got[k], v)
		}
	}
	return nil
}
