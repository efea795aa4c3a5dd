package features

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, advancedSteps) }

func advancedSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^(\w+)'s MCP client asks for the scopes "([^"]*)"$`, func(user, scopes string) error {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		a.Scopes = strings.Fields(scopes)
		return nil
	})
	sc.Step(`^the tool answers with the scopes "([^"]*)"$`, w.toolAnswersScopes)
	sc.Step(`^the remote MCP server requires the scope "([^"]+)" for the tool "([^"]+)"$`, func(ctx context.Context, scope, tool string) error {
		return w.patch(ctx, stack.UpstreamHost, "/.test/settings", map[string]any{"tool_scopes": map[string][]string{tool: strings.Fields(scope)}})
	})
	sc.Step(`^(\w+) lists (?:her|his|their) connections at "([^"]+)"$`, w.listConnections)
	sc.Step(`^(?:she|he|they) sees? (\d+) connections? to "([^"]+)"$`, w.seesConnections)
	sc.Step(`^(\w+) disconnects it$`, w.disconnectIt)
	sc.Step(`^"([^"]+)" received revocations of the refresh token and the access token$`, w.receivedRevocations)
	sc.Step(`^the remote authorization server answers the next request to "([^"]+)" with status (\d+)$`, func(ctx context.Context, path string, status int) error {
		return w.controlDo(ctx, stack.ASHost, http.MethodPost, "/.test/faults", map[string]any{"path": path, "count": 1, "status": status})
	})
	sc.Step(`^(\w+) connects an MCP client to "([^"]+)", trying again if the first attempt fails$`, func(ctx context.Context, user, endpoint string) error {
		if err := w.connects(ctx, user, endpoint); err != nil {
			return w.connects(ctx, user, endpoint)
		}
		return nil
	})
	sc.Step(`^the code exchange for (\w+) failed once$`, func(user string) error {
		n := 0
		for _, m := range w.logLines() {
			if m["event"] == "authorization_failed" && m["user"] == user && m["error_code"] == "authorization_server_unreachable" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%d failed code exchanges for %s were logged, want 1", n, user)
		}
		return nil
	})
	sc.Step(`^the first discovery after that failure was a cache miss$`, func() error {
		failed := false
		for _, m := range w.logLines() {
			switch {
			case m["event"] == "authorization_failed":
				failed = true
			case failed && m["event"] == "discovery_completed":
				if m["cache"] != "miss" {
					return fmt.Errorf("the first discovery after the failure was a cache %v", m["cache"])
				}
				return nil
			}
		}
		return fmt.Errorf("no discovery followed the failure (failure seen: %v)", failed)
	})
}

func (w *world) toolAnswersScopes(want string) error {
	who, err := w.whoami()
	if err != nil {
		return err
	}
	got := slices.Clone(who.Scopes)
	slices.Sort(got)
	exp := strings.Fields(want)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		return fmt.Errorf("whoami scopes = %q, want %q", who.Scopes, exp)
	}
	return nil
}

type connectionList struct {
	User        string `json:"user"`
	Connections []struct {
		ID       string `json:"id"`
		Upstream string `json:"upstream"`
		Client   string `json:"client"`
	} `json:"connections"`
}

func (w *world) listConnections(ctx context.Context, user, u string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	page, err := a.Browser.Get(ctx, u, "application/json")
	if err != nil {
		return err
	}
	if page.Status != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u, page.Status, page.Body)
	}
	var l connectionList
	if err := json.Unmarshal(page.Body, &l); err != nil {
		return fmt.Errorf("%s answered %s: %v", u, page.Body, err)
	}
	w.connections, w.connectionsUser, w.connectionsURL = &l, user, u
	return nil
}

func (w *world) seesConnections(n int, upstream string) error {
	if w.connections == nil {
		return fmt.Errorf("no connections were listed")
	}
	got := 0
	for _, c := range w.connections.Connections {
		if c.Upstream == upstream {
			got++
		}
	}
	if got != n || len(w.connections.Connections) != n {
		return fmt.Errorf("%d connections to %s (of %d), want %d", got, upstream, len(w.connections.Connections), n)
	}
	if w.connections.User != w.connectionsUser {
		return fmt.Errorf("the list is for %q, not %q", w.connections.User, w.connectionsUser)
	}
	return nil
}

func (w *world) disconnectIt(ctx context.Context, user string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	page, err := a.Browser.Click(ctx, w.connectionsURL, "disconnect", 0)
	if err != nil {
		return err
	}
	if page.Status != http.StatusOK || !strings.Contains(string(page.Body), "no connections") {
		return fmt.Errorf("after disconnecting, the page is %d: %s", page.Status, page.Body)
	}
	return nil
}

func (w *world) receivedRevocations(ctx context.Context, host string) error {
	evs, err := w.events(ctx, host, "revoke")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if e.Status == http.StatusOK {
			seen[e.Params["token_type_hint"]] = true
		}
	}
	if !seen["refresh_token"] || !seen["access_token"] {
		return fmt.Errorf("%s revoked %v, want both the refresh and the access token (%d revocation requests)", host, seen, len(evs))
	}
	return nil
}

// logLines returns the proxy's JSON log lines, decoded, in order.
func (w *world) logLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(w.st.ProxyLog(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
