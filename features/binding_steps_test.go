package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, bindingSteps) }

func bindingSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^(\w+) connects MCP client "([^"]+)" to "([^"]+)"$`, func(ctx context.Context, user, name, endpoint string) error {
		a, err := w.client(user, name)
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		return a.Connect(ctx, endpoint)
	})
	sc.Step(`^(\w+)'s MCP client "([^"]+)" calls the tool "([^"]+)"$`, func(ctx context.Context, user, name, tool string) error {
		return w.callAs(ctx, user, name, tool, map[string]any{})
	})
	sc.Step(`^(\w+)'s MCP clients "([^"]+)" and "([^"]+)" reach the remote server with (the same|different) tokens?$`, w.sameOrDifferentTokens)
	sc.Step(`^every token the remote MCP server received was issued for the user whose request carried it$`, w.everyTokenForItsUser)
	sc.Step(`^(\w+) disconnects the connection of (?:her|his|their) MCP client "([^"]+)"$`, w.disconnectClient)
	sc.Step(`^(\w+)'s browser shows an error with the code "([^"]+)"$`, func(user, code string) error {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		if a.PageError == nil {
			return fmt.Errorf("%s's browser did not stop at an error page", user)
		}
		if got := a.PageError.Element("code"); got != code {
			return fmt.Errorf("the error page shows code %q (%s), want %q", got, a.PageError.Element("message"), code)
		}
		return nil
	})
	sc.Step(`^the audit log has a line like the documented "([^"]+)"$`, w.auditLineLike)
	sc.Step(`^the command succeeds$`, func() error {
		if w.exit != 0 {
			return fmt.Errorf("the command failed with %d:\n%s%s", w.exit, w.stdout, w.stderr)
		}
		return nil
	})
	sc.Step(`^the operator changes the configuration to "([^"]+)"$`, w.operatorConfiguration)
	// A restart cuts the MCP client's event stream; the MCP Go SDK client
	// reconnects it on its own, and if that reconnection meets a 401 before
	// a request has run the authorization again, it gives the session up. A
	// client opening a new session, as clients do after their server went
	// away, makes the order the same every run.
	sc.Step(`^(\w+)'s MCP client opens a new session with "([^"]+)"$`, func(ctx context.Context, user, endpoint string) error {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		return a.Reconnect(ctx, endpoint)
	})
	sc.Step(`^the proxy restarts$`, func(ctx context.Context) error {
		ctx, cancel := stepContext(ctx)
		defer cancel()
		return w.st.RestartProxy(ctx)
	})
	sc.Step(`^a Redis server$`, func(ctx context.Context) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		return r.StartRedis(ctx)
	})
	sc.Step(`^Redis has been stopped for (\d+) seconds$`, func(ctx context.Context, n int) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		if err := r.StopRedis(ctx); err != nil {
			return err
		}
		// Past the replicas' 2 s reuse of what they read: requests now
		// ask Redis, and find it gone.
		select {
		case <-time.After(time.Duration(n) * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sc.Step(`^Redis starts again$`, func(ctx context.Context) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		return r.RestartRedis(ctx)
	})
	sc.Step(`^Redis with a replica and three Sentinels$`, func(ctx context.Context) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		return r.StartRedisSentinel(ctx)
	})
	sc.Step(`^the Sentinels fail the Redis primary over to its replica$`, func(ctx context.Context) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		return r.FailoverRedis(ctx)
	})
	sc.Step(`^the proxy is running with (\d+) replicas$`, func(ctx context.Context, n int) error {
		if err := w.proxyIsRunning(ctx); err != nil {
			return err
		}
		r, err := w.replicas()
		if err != nil {
			return err
		}
		for i := 1; i < n; i++ {
			if _, err := r.StartReplica(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	sc.Step(`^(\w+) has connected an MCP client to "([^"]+)" through replica (\d+)$`, func(ctx context.Context, user, endpoint string, n int) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		if err := r.UseReplica(n); err != nil {
			return err
		}
		return w.connects(ctx, user, endpoint)
	})
	sc.Step(`^(\w+)'s browser sends its GET requests to replica (\d+) and its POST requests to replica (\d+)$`, w.splitBrowser)
	sc.Step(`^(\w+)'s MCP client calls the tool "([^"]+)" through replica (\d+)$`, func(ctx context.Context, user, tool string, n int) error {
		r, err := w.replicas()
		if err != nil {
			return err
		}
		if err := r.UseReplica(n); err != nil {
			return err
		}
		return w.callsTool(ctx, user, tool)
	})
	sc.Step(`^the remote authorization server takes (\d+)ms to answer the next request to "([^"]+)"$`, func(ctx context.Context, ms int, path string) error {
		return w.controlDo(ctx, stack.ASHost, http.MethodPost, "/.test/faults", map[string]any{"path": path, "count": 1, "delay": fmt.Sprintf("%dms", ms)})
	})
	sc.Step(`^(\w+)'s MCP client's token is used through replica 1 and replica 2 at once$`, w.tokenThroughBothReplicas)
	sc.Step(`^both requests reached the remote MCP server with the same token$`, w.bothSameToken)
	sc.Step(`^"([^"]+)" received exactly (\d+) refresh requests? since then$`, func(ctx context.Context, host string, n int) error {
		evs, err := w.events(ctx, host, "token")
		if err != nil {
			return err
		}
		got := 0
		for _, e := range evs[w.tokenMark:] {
			if e.Params["grant_type"] == "refresh_token" {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%s received %d refresh requests, want %d", host, got, n)
		}
		return nil
	})
}

func (w *world) replicas() (stack.Replicas, error) {
	st, err := w.stack()
	if err != nil {
		return nil, err
	}
	r, ok := st.(stack.Replicas)
	if !ok {
		return nil, fmt.Errorf("the %s stack cannot run proxy replicas (scenarios that need them are tagged @local)", st.Mode())
	}
	return r, nil
}

// callAs calls a tool as user's MCP client name and keeps the result.
func (w *world) callAs(ctx context.Context, user, name, tool string, args map[string]any) error {
	a, err := w.client(user, name)
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
	return nil
}

func (w *world) sameOrDifferentTokens(ctx context.Context, user, c1, c2, which string) error {
	var fps []string
	for _, name := range []string{c1, c2} {
		if err := w.callAs(ctx, user, name, "whoami", map[string]any{}); err != nil {
			return err
		}
		who, err := w.whoami()
		if err != nil {
			return err
		}
		if who.Subject != user {
			return fmt.Errorf("%s's client %s reached the remote server as %q", user, name, who.Subject)
		}
		fps = append(fps, who.TokenFingerprint)
	}
	same := fps[0] == fps[1]
	if which == "the same" && !same || which == "different" && same {
		return fmt.Errorf("clients %s and %s reached the remote server with tokens %s and %s, want %s", c1, c2, fps[0], fps[1], which)
	}
	return nil
}

// everyTokenForItsUser checks, for every request the remote MCP server
// verified, that the authorization server issued that very token for the
// subject the request was made as.
func (w *world) everyTokenForItsUser(ctx context.Context) error {
	issued, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	subOf := map[string]string{}
	for _, e := range issued {
		if fp := e.Detail["access_token"]; fp != "" {
			subOf[fp] = e.Detail["sub"]
		}
	}
	seen, err := w.events(ctx, stack.UpstreamHost, "mcp")
	if err != nil {
		return err
	}
	checked := 0
	for _, e := range seen {
		if e.Authorization == "" || e.Detail["sub"] == "" {
			continue
		}
		if got := subOf[e.Authorization]; got != e.Detail["sub"] {
			return fmt.Errorf("the remote server received token %s as %q, but the authorization server issued it for %q", e.Authorization, e.Detail["sub"], got)
		}
		checked++
	}
	if checked == 0 {
		return errors.New("the remote server verified no token")
	}
	return nil
}

func (w *world) disconnectClient(ctx context.Context, user, name string) error {
	a, err := w.client(user, name)
	if err != nil {
		return err
	}
	if w.connections == nil {
		return errors.New("no connections were listed")
	}
	clientID := w.st.ClientMetadataURL(a.Name)
	for i, c := range w.connections.Connections {
		if c.Client == clientID {
			page, err := a.Browser.Click(ctx, w.connectionsURL, "disconnect", i)
			if err != nil {
				return err
			}
			if page.Status != http.StatusOK {
				return fmt.Errorf("disconnecting answered %d: %s", page.Status, page.Body)
			}
			return nil
		}
	}
	return fmt.Errorf("no connection of %s's client %s among %d", user, clientID, len(w.connections.Connections))
}

func (w *world) auditLineLike(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	f, ok := w.st.(stack.Files)
	if !ok {
		return fmt.Errorf("the %s stack cannot read the proxy's files", w.st.Mode())
	}
	b, err := f.ProxyFile("audit.log")
	if err != nil {
		return err
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil {
		return fmt.Errorf("example %q is not JSON: %v", id, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var got map[string]any
		if json.Unmarshal([]byte(line), &got) == nil && logMismatch(want, got) == "" {
			return nil
		}
	}
	return fmt.Errorf("the audit log has no line like the documented %q:\n%s", id, b)
}

func (w *world) tokenThroughBothReplicas(ctx context.Context, user string) error {
	r, err := w.replicas()
	if err != nil {
		return err
	}
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	tok, err := a.Token(ctx)
	if err != nil {
		return err
	}
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	w.tokenMark = len(evs)
	before, err := w.events(ctx, stack.UpstreamHost, "mcp")
	if err != nil {
		return err
	}
	w.mcpMark = len(before)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		rt, err := r.ReplicaTransport(i + 1)
		if err != nil {
			return err
		}
		wg.Go(func() {
			body := `{"jsonrpc":"2.0","id":7,"method":"ping"}`
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+stack.ProxyHost+"/mcp", strings.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", a.SessionID())
			req.Header.Set("MCP-Protocol-Version", a.ProtocolVersion())
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("replica %d answered %d: %s", i+1, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *world) bothSameToken(ctx context.Context) error {
	evs, err := w.events(ctx, stack.UpstreamHost, "mcp")
	if err != nil {
		return err
	}
	var fps []string
	for _, e := range evs[w.mcpMark:] {
		if e.Method == http.MethodPost && e.Detail["mcp_method"] == "ping" {
			fps = append(fps, e.Authorization)
		}
	}
	if len(fps) != 2 || fps[0] != fps[1] || fps[0] == "" {
		return fmt.Errorf("the remote server received the two requests with tokens %v, want one token twice", fps)
	}
	return nil
}

// splitBrowser sends the user's browser's GET requests to one replica and
// its POST requests to another, as a load balancer without sticky sessions
// may: every form is then served by one replica and posted to the other.
func (w *world) splitBrowser(user string, get, post int) error {
	r, err := w.replicas()
	if err != nil {
		return err
	}
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	gt, err := r.ReplicaTransport(get)
	if err != nil {
		return err
	}
	pt, err := r.ReplicaTransport(post)
	if err != nil {
		return err
	}
	a.Browser.SetTransport(byMethod{get: gt, post: pt})
	return nil
}

// byMethod routes POST requests one way and everything else another.
type byMethod struct{ get, post http.RoundTripper }

func (m byMethod) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		return m.post.RoundTrip(r)
	}
	return m.get.RoundTrip(r)
}
