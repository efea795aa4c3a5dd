package features

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, troubleshootingSteps) }

func troubleshootingSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^the remote authorization server does not support Client ID Metadata Documents$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.ASHost, "/.test/settings", map[string]any{"cimd": false})
	})
	sc.Step(`^the remote authorization server offers dynamic client registration$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.ASHost, "/.test/settings", map[string]any{"dcr": true})
	})
	sc.Step(`^the remote authorization server issues access tokens that live (\d+) seconds$`, func(ctx context.Context, n int) error {
		w.tokenLife = time.Duration(n) * time.Second
		return w.patch(ctx, stack.ASHost, "/.test/settings", map[string]any{"access_token_ttl": fmt.Sprintf("%ds", n)})
	})
	sc.Step(`^the remote MCP server publishes no protected resource metadata$`, func(ctx context.Context) error {
		return w.patch(ctx, stack.UpstreamHost, "/.test/settings", map[string]any{"prm": "absent"})
	})
	sc.Step(`^the remote authorization server drops the next request to "([^"]+)"$`, func(ctx context.Context, path string) error {
		return w.controlDo(ctx, stack.ASHost, http.MethodPost, "/.test/faults", map[string]any{"path": path, "count": 1, "drop": true})
	})
	sc.Step(`^the remote authorization server revokes (\w+)'s grants$`, func(ctx context.Context, user string) error {
		return w.controlDo(ctx, stack.ASHost, http.MethodPost, "/.test/revoke-user", map[string]any{"subject": user})
	})
	sc.Step(`^(\w+) tries to connect an MCP client to "([^"]+)"$`, w.triesToConnect)
	sc.Step(`^(\w+)'s browser shows the documented error "([^"]+)"$`, w.browserShowsDocumented)
	sc.Step(`^the proxy logged the documented event "([^"]+)" for that page$`, func(id string) error {
		if w.page == nil {
			return errors.New("no error page was seen")
		}
		return w.loggedDocumented(id, w.page.Element("request-id"))
	})
	sc.Step(`^the proxy logged the documented event "([^"]+)"$`, func(id string) error { return w.loggedDocumented(id, "") })
	sc.Step(`^"([^"]+)" received no authorization request$`, func(ctx context.Context, host string) error {
		return w.countEvents(ctx, host, "authorize", 0)
	})
	sc.Step(`^the proxy ran no discovery$`, func() error {
		for _, line := range strings.Split(w.st.ProxyLog(), "\n") {
			if strings.Contains(line, `"event":"discovery_`) {
				return fmt.Errorf("the proxy logged a discovery: %s", line)
			}
		}
		return nil
	})
	sc.Step(`^"([^"]+)" served its protected resource metadata once$`, func(ctx context.Context, host string) error {
		return w.countEvents(ctx, host, "prm", 1)
	})
	sc.Step(`^(\w+) was sent to "([^"]+)" only once$`, func(ctx context.Context, _ string, host string) error {
		return w.countEvents(ctx, host, "authorize", 1)
	})
	sc.Step(`^(\w+) was sent to "([^"]+)" twice$`, func(ctx context.Context, _ string, host string) error {
		return w.countEvents(ctx, host, "authorize", 2)
	})
	sc.Step(`^(\w+) was never sent to "([^"]+)"$`, func(ctx context.Context, _ string, host string) error {
		return w.countEvents(ctx, host, "authorize", 0)
	})
	sc.Step(`^the client id in every authorization request to "([^"]+)" is "([^"]+)"$`, w.everyClientID)
	sc.Step(`^the token requests to "([^"]+)" authenticated with "([^"]+)"$`, w.tokenAuthMethod)
	sc.Step(`^"([^"]+)" registered exactly one client, the one every authorization request names$`, w.registeredOne)
	sc.Step(`^(\w+)'s MCP client sends a request with its token to "([^"]+)"$`, w.rawWithToken)
	sc.Step(`^the answer has status (\d+) and is the documented error "([^"]+)"$`, w.answerIsDocumentedError)
	sc.Step(`^the answer has status (\d+) and names the error "([^"]+)"$`, w.answerNamesErrorStatus)
	sc.Step(`^"([^"]+)" received a refresh request$`, func(ctx context.Context, host string) error {
		evs, err := w.events(ctx, host, "token")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Params["grant_type"] == "refresh_token" && e.Status == http.StatusOK {
				return nil
			}
		}
		return fmt.Errorf("%s received no successful refresh among %d token requests", host, len(evs))
	})
	sc.Step(`^the command succeeds and prints the documented "([^"]+)"$`, w.commandSucceedsWithDocumented)
	sc.Step(`^(\w+)'s browser opens the remote authorization server's answer again$`, w.replayAnswer)
	sc.Step(`^(\w+) has stopped at the remote authorization server's answer$`, w.stopAtAnswer)
	sc.Step(`^(\w+)'s browser opens (\w+)'s answer$`, w.openOthersAnswer)
	sc.Step(`^(\w+) can still finish (?:her|his|their) connection with that answer$`, w.finishWithAnswer)
	sc.Step(`^a request for "([^"]+)" carries the Host "([^"]+)"$`, w.requestWithHost)
}

// controlDo sends a control request with a JSON body to a double.
func (w *world) controlDo(ctx context.Context, host, method, path string, body any) error {
	c, err := w.controlClient(host)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, c.BaseURL+path, strings.NewReader(string(b)), nil)
}

func (w *world) patch(ctx context.Context, host, path string, body any) error {
	if _, err := w.stack(); err != nil {
		return err
	}
	return w.controlDo(ctx, host, http.MethodPatch, path, body)
}

func (w *world) controlClient(host string) (*control.Client, error) {
	switch host {
	case stack.ASHost:
		return w.st.AS(), nil
	case stack.IdPHost:
		return w.st.IdP(), nil
	case stack.UpstreamHost:
		return w.st.MCP(), nil
	}
	return nil, fmt.Errorf("%s has no control API", host)
}

func (w *world) countEvents(ctx context.Context, host, kind string, want int) error {
	evs, err := w.events(ctx, host, kind)
	if err != nil {
		return err
	}
	if len(evs) != want {
		return fmt.Errorf("%s recorded %d %s events, want %d", host, len(evs), kind, want)
	}
	return nil
}

func (w *world) triesToConnect(ctx context.Context, user, endpoint string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	if err := a.Connect(ctx, endpoint); err == nil {
		return fmt.Errorf("%s's MCP client connected, but the scenario expects the connection to fail", user)
	}
	w.page = a.PageError
	return nil
}

func (w *world) browserShowsDocumented(user, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	if w.page == nil {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		w.page = a.PageError
	}
	if w.page == nil {
		return fmt.Errorf("%s's browser did not stop at an error page", user)
	}
	got := w.page.Element("code") + ": " + w.page.Element("message")
	if want := strings.TrimSpace(e.Body); got != want {
		return fmt.Errorf("the page at %s says\n  %s\nthe docs say\n  %s", w.page.URL, got, want)
	}
	if id := w.page.Element("request-id"); id == "" {
		return errors.New("the error page shows no request id")
	}
	return nil
}

// loggedDocumented finds a proxy log line that has every key of the
// documented line with the same value; "<...>" values only need to be
// present, and requestID, when set, must be the line's request_id.
func (w *world) loggedDocumented(id, requestID string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil {
		return fmt.Errorf("example %q is not a JSON log line: %v", id, err)
	}
	sc := bufio.NewScanner(strings.NewReader(w.st.ProxyLog()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var near []string
	for sc.Scan() {
		var got map[string]any
		if json.Unmarshal(sc.Bytes(), &got) != nil {
			continue
		}
		if got["event"] != want["event"] {
			continue
		}
		if requestID != "" && got["request_id"] != requestID {
			near = append(near, sc.Text())
			continue
		}
		if missing := logMismatch(want, got); missing == "" {
			return nil
		} else {
			near = append(near, missing+" in "+sc.Text())
		}
	}
	return fmt.Errorf("the proxy logged no line like the documented %q (request id %q); lines with that event: %v", id, requestID, near)
}

func logMismatch(want, got map[string]any) string {
	for k, v := range want {
		if k == "time" {
			continue
		}
		g, ok := got[k]
		if !ok {
			return "no key " + k
		}
		if s, isStr := v.(string); isStr && strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
			continue
		}
		if fmt.Sprint(g) != fmt.Sprint(v) {
			return fmt.Sprintf("%s = %v, not %v", k, g, v)
		}
	}
	return ""
}

func (w *world) everyClientID(ctx context.Context, host, clientID string) error {
	evs, err := w.events(ctx, host, "authorize")
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%s received no authorization request", host)
	}
	for _, e := range evs {
		if e.Params["client_id"] != clientID {
			return fmt.Errorf("an authorization request to %s named client_id %q, want %q", host, e.Params["client_id"], clientID)
		}
	}
	return nil
}

func (w *world) tokenAuthMethod(ctx context.Context, host, method string) error {
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%s received no token request", host)
	}
	for _, e := range evs {
		if e.Detail["auth_method"] != method || e.Status != http.StatusOK {
			return fmt.Errorf("a token request to %s authenticated with %q (status %d, %s), want %q",
				host, e.Detail["auth_method"], e.Status, e.Detail["error_description"], method)
		}
	}
	return nil
}

func (w *world) registeredOne(ctx context.Context, host string) error {
	regs, err := w.events(ctx, host, "register")
	if err != nil {
		return err
	}
	var ok []control.Event
	for _, e := range regs {
		if e.Status == http.StatusCreated {
			ok = append(ok, e)
		}
	}
	if len(ok) != 1 {
		return fmt.Errorf("%s registered %d clients, want exactly 1", host, len(ok))
	}
	id := ok[0].Detail["client_id"]
	if id == "" {
		return fmt.Errorf("the register event names no client_id: %+v", ok[0])
	}
	return w.everyClientID(ctx, host, id)
}

func (w *world) rawWithToken(ctx context.Context, user, target string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	tok, err := a.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(`{"jsonrpc":"2.0","id":99,"method":"ping"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if id := a.SessionID(); id != "" {
		// The request belongs to the client's MCP session, as its own would.
		req.Header.Set("Mcp-Session-Id", id)
		req.Header.Set("MCP-Protocol-Version", a.ProtocolVersion())
	}
	return w.send(req)
}

func (w *world) answerError() (string, string, error) {
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		RequestID   string `json:"request_id"`
	}
	if err := json.Unmarshal(w.body, &b); err != nil {
		return "", "", fmt.Errorf("the answer is not a JSON error: %v: %s", err, w.body)
	}
	if b.RequestID == "" || b.RequestID != w.resp.Header.Get("X-Request-Id") {
		return "", "", fmt.Errorf("request_id %q differs from the X-Request-Id header %q", b.RequestID, w.resp.Header.Get("X-Request-Id"))
	}
	return b.Error, b.Description, nil
}

func (w *world) answerIsDocumentedError(status int, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	if w.resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d: %s", w.resp.StatusCode, status, w.body)
	}
	code, desc, err := w.answerError()
	if err != nil {
		return err
	}
	if got, want := code+": "+desc, strings.TrimSpace(e.Body); got != want {
		return fmt.Errorf("the answer says\n  %s\nthe docs say\n  %s", got, want)
	}
	return nil
}

func (w *world) answerNamesErrorStatus(status int, code string) error {
	if w.resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d: %s", w.resp.StatusCode, status, w.body)
	}
	got, _, err := w.answerError()
	if err != nil {
		return err
	}
	if got != code {
		return fmt.Errorf("error %q, want %q", got, code)
	}
	return nil
}

func (w *world) commandSucceedsWithDocumented(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	if w.exit != 0 {
		return fmt.Errorf("the command failed with %d:\n%s%s", w.exit, w.stdout, w.stderr)
	}
	if got, want := strings.TrimSpace(w.stdout), strings.TrimSpace(e.Body); got != want {
		return fmt.Errorf("the command printed:\n%s\nthe docs say:\n%s", got, want)
	}
	return nil
}

// answerURL is the first answer of the remote authorization server that
// user's browser reached (the proxy's upstream callback).
func (w *world) answerURL(user string) (string, error) {
	a, err := w.actor(user)
	if err != nil {
		return "", err
	}
	if a.Stopped != "" {
		return a.Stopped, nil
	}
	for _, v := range a.Browser.Visits() {
		if v.URL.Path == "/.mcp-proxy/upstream/callback" {
			return v.URL.String(), nil
		}
	}
	return "", fmt.Errorf("%s's browser never reached the proxy's upstream callback", user)
}

// openAnswer makes user's browser open u; it must stop at an error page.
func (w *world) openAnswer(ctx context.Context, user, u string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	_, err = a.Browser.Navigate(ctx, u, a.RedirectURL())
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		return fmt.Errorf("opening %s did not stop at an error page (err %v)", u, err)
	}
	w.page = pe
	return nil
}

func (w *world) replayAnswer(ctx context.Context, user string) error {
	u, err := w.answerURL(user)
	if err != nil {
		return err
	}
	return w.openAnswer(ctx, user, u)
}

func (w *world) stopAtAnswer(ctx context.Context, user string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	a.StopAt = "https://" + stack.ProxyHost + "/.mcp-proxy/upstream/callback"
	ctx, cancel := stepContext(ctx)
	defer cancel()
	if err := a.Connect(ctx, "https://"+stack.ProxyHost+"/mcp"); err == nil || a.Stopped == "" {
		return fmt.Errorf("%s's browser did not stop at the answer (err %v)", user, err)
	}
	return nil
}

func (w *world) openOthersAnswer(ctx context.Context, user, owner string) error {
	u, err := w.answerURL(owner)
	if err != nil {
		return err
	}
	return w.openAnswer(ctx, user, u)
}

func (w *world) finishWithAnswer(ctx context.Context, user string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	u, err := a.Browser.Navigate(ctx, a.Stopped, a.RedirectURL())
	if err != nil {
		return fmt.Errorf("%s could not finish: %w", user, err)
	}
	if q, _ := url.ParseQuery(u.RawQuery); q.Get("code") == "" {
		return fmt.Errorf("%s's MCP client got no code: %s", user, u)
	}
	return nil
}

func (w *world) requestWithHost(ctx context.Context, target, host string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Host = host
	return w.send(req)
}
