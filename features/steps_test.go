package features

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
	"github.com/mcp-proxy/mcp-proxy/internal/docexamples"
	"github.com/mcp-proxy/mcp-proxy/internal/mcpremote"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/mockmcp"
)

// world is one scenario's state.
type world struct {
	docs     *docexamples.Set
	newStack func() (stack.Stack, error)
	st       stack.Stack
	examples []string // ids of the documented examples this scenario used

	// The last raw HTTP answer.
	resp *http.Response
	body []byte

	// The last command.
	stdout, stderr string
	exit           int

	actors map[string]*actors.MCPClient
	// remote is the scenario's mcp-remote, once started.
	remote *mcpremote.Client
	// page is the last error page a browser stopped at.
	page *browser.PageError
	// metricMarks are metric values before the last marked step.
	metricMarks map[string]float64
	// Marks: how many events a double had recorded at a point.
	tokenMark, mcpMark int
	// tokenLife is what the remote authorization server was told its
	// access tokens live (0: its default).
	tokenLife time.Duration
	// faultMark is how many fault events the remote authorization server
	// had recorded when the scenario made it fail; untilFail is the last
	// run of requests until one failed.
	faultMark int
	untilFail *requestRun
	// The last connections listing.
	connections                     *connectionList
	connectionsUser, connectionsURL string
	lastTool                        *mcp.CallToolResult
	// tokenRequests is the number of token requests the remote
	// authorization server had received at a marked point.
	tokenRequests int
	// acme is the scenario's ACME server and the certificates seen.
	acme *acmeState
}

// moreSteps lets other files of this package add their own steps: each
// appends a registrar in an init function.
var moreSteps []func(*world, *godog.ScenarioContext)

func (w *world) register(sc *godog.ScenarioContext) {
	for _, add := range moreSteps {
		add(w, sc)
	}
	sc.Step(`^the operator configuration "([^"]+)"$`, w.operatorConfiguration)
	sc.Step(`^the proxy is running$`, w.proxyIsRunning)
	sc.Step(`^an MCP client posts "([^"]+)" to "([^"]+)" without a token$`, w.postWithoutToken)
	sc.Step(`^the answer is the documented "([^"]+)"$`, w.answerIsDocumented)
	sc.Step(`^the answer is JSON naming the error "([^"]+)" and a request id$`, w.answerNamesError)
	sc.Step(`^(\w+) connects an MCP client to "([^"]+)"$`, w.connects)
	sc.Step(`^(\w+) has connected an MCP client to "([^"]+)"$`, w.connects)
	sc.Step(`^(\w+) signed in at "([^"]+)"$`, w.signedIn)
	sc.Step(`^(\w+) approved the (?:MCP client|proxy) at "([^"]+)"$`, w.approved)
	sc.Step(`^"([^"]+)" fetched the Client ID Metadata Document "([^"]+)"$`, w.fetchedCIMD)
	sc.Step(`^the client id in the authorization request to "([^"]+)" is a URL on "([^"]+)"$`, w.clientIDOn)
	sc.Step(`^(\w+)'s MCP client (?:calls|has called) the tool "([^"]+)"$`, w.callsTool)
	sc.Step(`^(\w+)'s MCP client calls the tool "([^"]+)" with the text "([^"]*)"$`, w.callsToolWithText)
	sc.Step(`^the tool answers with the subject "([^"]+)" and the audience "([^"]+)"$`, w.toolAnswersIdentity)
	sc.Step(`^the tool answers with the text "([^"]*)"$`, w.toolAnswersText)
	sc.Step(`^the token that reached the remote MCP server was issued by "([^"]+)"$`, w.upstreamTokenIssuedBy)
	sc.Step(`^the token that reached the remote MCP server is not the one (\w+)'s MCP client holds$`, w.upstreamTokenIsNotClients)
	sc.Step(`^the remote MCP server never received the token (\w+)'s MCP client holds$`, w.upstreamNeverSawClientToken)
	sc.Step(`^no new token request reached "([^"]+)"$`, w.noNewTokenRequest)
	sc.Step(`^the operator runs "([^"]+)"$`, w.operatorRuns)
	sc.Step(`^the command fails and prints the documented "([^"]+)"$`, w.commandFailsWithDocumented)
}

// stack starts the scenario's stack on first use.
func (w *world) stack() (stack.Stack, error) {
	if w.st == nil {
		st, err := w.newStack()
		if err != nil {
			return nil, fmt.Errorf("starting the stack: %w", err)
		}
		w.st = st
	}
	return w.st, nil
}

// close ends the scenario: it fails when anything tried to connect outside
// the stack, then stops the stack.
func (w *world) close() error {
	var errs []error
	for _, a := range w.actors {
		a.Close()
	}
	if w.remote != nil {
		w.remote.Close()
	}
	if w.st != nil {
		if d := w.st.RefusedDials(); len(d) > 0 {
			errs = append(errs, fmt.Errorf("something tried to connect outside the stack: %v", d))
		}
		errs = append(errs, w.st.Close())
	}
	return errors.Join(errs...)
}

// example loads a documented example and notes that the scenario used it.
func (w *world) example(id string) (*docexamples.Example, error) {
	e, err := w.docs.Get(id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(w.examples, id) {
		w.examples = append(w.examples, id)
	}
	return e, nil
}

func (w *world) operatorConfiguration(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	st, err := w.stack()
	if err != nil {
		return err
	}
	return st.WriteConfig(e.Body)
}

func (w *world) proxyIsRunning(ctx context.Context) error {
	st, err := w.stack()
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	return st.StartProxy(ctx)
}

func (w *world) httpClient() *http.Client {
	return &http.Client{
		Transport:     w.st.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (w *world) postWithoutToken(ctx context.Context, method, target string) error {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"conformance","version":"1"}}}`, method)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return w.send(req)
}

// answerIsDocumented compares the last answer with a documented HTTP
// answer: its status line, and each header it shows with exactly that value.
func (w *world) answerIsDocumented(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(e.Body))
	if !sc.Scan() {
		return fmt.Errorf("example %q is empty", id)
	}
	var proto string
	var code int
	if _, err := fmt.Sscanf(sc.Text(), "%s %d", &proto, &code); err != nil {
		return fmt.Errorf("example %q does not start with a status line: %q", id, sc.Text())
	}
	if w.resp.StatusCode != code {
		return fmt.Errorf("status = %d, the docs say %d (body: %s)", w.resp.StatusCode, code, w.body)
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("example %q: %q is not a header line", id, line)
		}
		got := w.resp.Header.Values(name)
		if !slices.Contains(got, strings.TrimSpace(value)) {
			return fmt.Errorf("header %s = %q, the docs say %q", name, got, strings.TrimSpace(value))
		}
	}
	return nil
}

func (w *world) answerNamesError(ctx context.Context, code string) error {
	var b struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(w.body, &b); err != nil {
		return fmt.Errorf("the answer is not JSON: %v: %s", err, w.body)
	}
	if b.Error != code {
		return fmt.Errorf("error = %q, want %q", b.Error, code)
	}
	if b.RequestID == "" || b.RequestID != w.resp.Header.Get("X-Request-Id") {
		return fmt.Errorf("request_id %q differs from the X-Request-Id header %q", b.RequestID, w.resp.Header.Get("X-Request-Id"))
	}
	return w.loggedRequestID(ctx, b.RequestID)
}

// loggedRequestID waits (bounded) for the proxy's log line of a request
// id: a container's log reaches the harness a moment after its answer.
func (w *world) loggedRequestID(ctx context.Context, id string) error {
	return poll(ctx, 5*time.Second, func() error {
		if !strings.Contains(w.st.ProxyLog(), `"request_id":"`+id+`"`) {
			return fmt.Errorf("the proxy log has no line with request id %s", id)
		}
		return nil
	})
}

func (w *world) connects(ctx context.Context, user, endpoint string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	return a.Connect(ctx, endpoint)
}

func (w *world) signedIn(user, host string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	if !a.Browser.Did("sign-in", host) {
		return fmt.Errorf("%s did not sign in at %s; the browser saw: %s", user, host, a.History())
	}
	return nil
}

func (w *world) approved(user, host string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	if !a.Browser.Did("approve", host) {
		return fmt.Errorf("%s approved nothing at %s; the browser saw: %s", user, host, a.History())
	}
	return nil
}

func (w *world) events(ctx context.Context, host, kind string) ([]control.Event, error) {
	var c *control.Client
	switch host {
	case stack.ASHost:
		c = w.st.AS()
	case stack.IdPHost:
		c = w.st.IdP()
	case stack.UpstreamHost:
		c = w.st.MCP()
	default:
		return nil, fmt.Errorf("%s has no control API", host)
	}
	return c.Events(ctx, kind)
}

func (w *world) fetchedCIMD(ctx context.Context, host, docURL string) error {
	evs, err := w.events(ctx, host, "cimd_fetch")
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range evs {
		if e.Params["url"] == docURL && e.Status == http.StatusOK && e.Detail["error"] == "" {
			return nil
		}
		seen = append(seen, fmt.Sprintf("%s → %d %s", e.Params["url"], e.Status, e.Detail["error"]))
	}
	return fmt.Errorf("%s never fetched %s successfully; its fetches: %v", host, docURL, seen)
}

func (w *world) clientIDOn(ctx context.Context, host, idHost string) error {
	evs, err := w.events(ctx, host, "authorize")
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%s received no authorization request", host)
	}
	for _, e := range evs {
		u, err := url.Parse(e.Params["client_id"])
		if err != nil || u.Scheme != "https" || u.Host != idHost {
			return fmt.Errorf("an authorization request to %s named client_id %q, not an https URL on %s", host, e.Params["client_id"], idHost)
		}
	}
	return nil
}

func (w *world) callsTool(ctx context.Context, user, tool string) error {
	return w.call(ctx, user, tool, map[string]any{})
}

func (w *world) callsToolWithText(ctx context.Context, user, tool, text string) error {
	return w.call(ctx, user, tool, map[string]any{"text": text})
}

func (w *world) call(ctx context.Context, user, tool string, args map[string]any) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	res, err := a.Call(ctx, tool, args)
	if err != nil {
		return err
	}
	w.lastTool = res
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	w.tokenRequests = len(evs)
	return nil
}

// whoami reads the last tool result as the mock server's whoami answer.
type whoami struct {
	Subject          string   `json:"subject"`
	Scopes           []string `json:"scopes"`
	Audience         []string `json:"audience"`
	ClientID         string   `json:"client_id"`
	TokenID          string   `json:"token_id"`
	Issuer           string   `json:"issuer"`
	TokenFingerprint string   `json:"token_fingerprint"`
}

func (w *world) whoami() (*whoami, error) {
	if w.lastTool == nil {
		return nil, errors.New("no tool was called")
	}
	if w.lastTool.IsError {
		return nil, fmt.Errorf("the tool failed: %s", actors.ToolText(w.lastTool))
	}
	var out whoami
	b, err := json.Marshal(w.lastTool.StructuredContent)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("whoami answered %s: %v", b, err)
	}
	return &out, nil
}

func (w *world) toolAnswersIdentity(subject, audience string) error {
	who, err := w.whoami()
	if err != nil {
		return err
	}
	if who.Subject != subject {
		return fmt.Errorf("whoami subject = %q, want %q", who.Subject, subject)
	}
	if !slices.Contains(who.Audience, audience) {
		return fmt.Errorf("whoami audience = %q, want it to contain %q", who.Audience, audience)
	}
	return nil
}

func (w *world) toolAnswersText(text string) error {
	if w.lastTool == nil {
		return errors.New("no tool was called")
	}
	if got := actors.ToolText(w.lastTool); got != text || w.lastTool.IsError {
		return fmt.Errorf("the tool answered %q (error: %v), want %q", got, w.lastTool.IsError, text)
	}
	return nil
}

// upstreamFingerprint is the fingerprint of the token the remote MCP server
// received with the last whoami call, from its own record.
func (w *world) upstreamFingerprint(ctx context.Context) (string, error) {
	who, err := w.whoami()
	if err != nil {
		return "", err
	}
	evs, err := w.events(ctx, stack.UpstreamHost, "mcp")
	if err != nil {
		return "", err
	}
	for _, e := range evs {
		if e.Detail[mockmcp.DetailToolName] == "whoami" && e.Authorization == who.TokenFingerprint && e.Authorization != "" {
			return e.Authorization, nil
		}
	}
	return "", fmt.Errorf("the remote MCP server recorded no whoami call with token %s", who.TokenFingerprint)
}

func (w *world) upstreamTokenIssuedBy(ctx context.Context, host string) error {
	fp, err := w.upstreamFingerprint(ctx)
	if err != nil {
		return err
	}
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	for _, e := range evs {
		if e.Detail["access_token"] == fp {
			who, _ := w.whoami()
			if who.Issuer != "https://"+host {
				return fmt.Errorf("the token names issuer %q, want https://%s", who.Issuer, host)
			}
			return nil
		}
	}
	return fmt.Errorf("%s never issued the token %s that reached the remote MCP server", host, fp)
}

func (w *world) clientToken(ctx context.Context, user string) (string, error) {
	a, err := w.actor(user)
	if err != nil {
		return "", err
	}
	return a.TokenFingerprint(ctx)
}

func (w *world) upstreamTokenIsNotClients(ctx context.Context, user string) error {
	fp, err := w.upstreamFingerprint(ctx)
	if err != nil {
		return err
	}
	mine, err := w.clientToken(ctx, user)
	if err != nil {
		return err
	}
	if fp == mine {
		return fmt.Errorf("the remote MCP server received %s, the very token %s's MCP client holds", fp, user)
	}
	return nil
}

func (w *world) upstreamNeverSawClientToken(ctx context.Context, user string) error {
	mine, err := w.clientToken(ctx, user)
	if err != nil {
		return err
	}
	evs, err := w.events(ctx, stack.UpstreamHost, "")
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return errors.New("the remote MCP server recorded no request at all")
	}
	for _, e := range evs {
		if e.Authorization == mine {
			return fmt.Errorf("the remote MCP server received %s's own token on %s %s", user, e.Method, e.Path)
		}
	}
	return nil
}

func (w *world) noNewTokenRequest(ctx context.Context, host string) error {
	evs, err := w.events(ctx, host, "token")
	if err != nil {
		return err
	}
	if len(evs) != w.tokenRequests {
		return fmt.Errorf("%s received %d token requests since the first call, want none", host, len(evs)-w.tokenRequests)
	}
	if w.tokenRequests == 0 {
		return fmt.Errorf("%s never issued a token at all, so the cache was not what answered", host)
	}
	return nil
}

func (w *world) operatorRuns(ctx context.Context, command string) error {
	args := strings.Fields(command)
	if len(args) == 0 || args[0] != "mcp-proxy" {
		return fmt.Errorf("%q is not an mcp-proxy command", command)
	}
	st, err := w.stack()
	if err != nil {
		return err
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	w.stdout, w.stderr, w.exit = st.RunProxy(ctx, args[1:]...)
	return nil
}

func (w *world) commandFailsWithDocumented(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	if w.exit == 0 {
		return fmt.Errorf("the command succeeded; stdout: %s", w.stdout)
	}
	if got, want := strings.TrimSpace(w.stderr), strings.TrimSpace(e.Body); got != want {
		return fmt.Errorf("the command printed:\n%s\nthe docs say:\n%s", got, want)
	}
	return nil
}

func (w *world) actor(user string) (*actors.MCPClient, error) { return w.client(user, "") }

// client returns user's MCP client called name ("" for the user's first
// client). A user's clients share one browser, as they would on one
// machine.
func (w *world) client(user, name string) (*actors.MCPClient, error) {
	key := user + "/" + name
	if a, ok := w.actors[key]; ok {
		return a, nil
	}
	if w.st == nil {
		return nil, errors.New("no stack is running")
	}
	clientName := user + "-client"
	if name != "" {
		clientName = user + "-" + name
	}
	a, err := actors.NewMCPClient(w.st.Transport(), user, clientName, w.st.ClientMetadataURL(clientName), w.st.ClientRedirectURL(clientName))
	if err != nil {
		return nil, err
	}
	if w.actors == nil {
		w.actors = make(map[string]*actors.MCPClient)
	}
	for k, other := range w.actors {
		if strings.HasPrefix(k, user+"/") {
			a.Browser = other.Browser
			break
		}
	}
	w.actors[key] = a
	return a, nil
}

// docPage returns the Markdown of a docs page by name.
func docPage(_ *world, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(docsDir, name+".md"))
	return string(b), err
}

// send sends a request by hand and keeps the answer for the steps that
// follow.
func (w *world) send(req *http.Request) error {
	resp, err := w.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.resp = resp
	w.body, err = io.ReadAll(resp.Body)
	return err
}
