package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, realServerSteps) }

// realServersDir is where make real-servers puts the dex and hydra binaries.
func realServersDir() string { return envOr(stack.RealServersDirEnv, "../build/realservers") }

// realWorld is a scenario's real servers and what its steps noted.
type realWorld struct {
	rs      *stack.RealServers
	ttl     time.Duration         // Hydra's access token lifetime for the proxy's client
	marks   map[string]int        // token requests by grant type at the last mark
	results []*mcp.CallToolResult // the answers of concurrent calls
	mu      sync.Mutex
}

var (
	realWorldsMu sync.Mutex
	realWorlds   = map[*world]*realWorld{}
)

func (w *world) real() (*realWorld, error) {
	realWorldsMu.Lock()
	defer realWorldsMu.Unlock()
	rw := realWorlds[w]
	if rw == nil || rw.rs == nil {
		return nil, errors.New("Dex and Hydra are not running (Given Dex and Hydra are running)")
	}
	return rw, nil
}

func realServerSteps(w *world, sc *godog.ScenarioContext) {
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		realWorldsMu.Lock()
		rw := realWorlds[w]
		delete(realWorlds, w)
		realWorldsMu.Unlock()
		if rw != nil && rw.rs != nil {
			fmt.Printf("real servers: Hydra received %d token requests (authorization_code %d, refresh_token %d, client_credentials %d)\n",
				rw.rs.TokenRequests(""), rw.rs.TokenRequests("authorization_code"), rw.rs.TokenRequests("refresh_token"), rw.rs.TokenRequests("client_credentials"))
			if err != nil {
				fmt.Fprintf(os.Stderr, "real servers' logs:\n%s\n", tail(rw.rs.Logs(), 40))
			}
			return ctx, rw.rs.Close()
		}
		return ctx, nil
	})
	sc.Step(`^Dex and Hydra are running$`, w.realServersRunning)
	sc.Step(`^Hydra's access tokens live (\d+) seconds$`, func(n int) error {
		rw, err := w.real()
		if err != nil {
			return err
		}
		rw.ttl = time.Duration(n) * time.Second
		return nil
	})
	sc.Step(`^the proxy is registered at Hydra as the documented client "([^"]+)"$`, w.registeredAtHydra)
	sc.Step(`^Hydra's consent app grants only the audience the client asks for$`, func() error {
		rw, err := w.real()
		if err != nil {
			return err
		}
		rw.rs.Login.SetAudience()
		return nil
	})
	sc.Step(`^(\w+)'s MCP client (?:calls|has called) the tool "([^"]+)" behind Hydra$`, func(ctx context.Context, user, tool string) error {
		return w.callBehindHydra(ctx, user, "", tool, map[string]any{})
	})
	sc.Step(`^(\w+)'s MCP client calls the tool "([^"]+)" with the text "([^"]*)" behind Hydra$`, func(ctx context.Context, user, tool, text string) error {
		return w.callBehindHydra(ctx, user, "", tool, map[string]any{"text": text})
	})
	sc.Step(`^(\w+) has connected (?:her|his|their) MCP client "([^"]+)" to "([^"]+)"$`, func(ctx context.Context, user, name, endpoint string) error {
		a, err := w.client(user, name)
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		return a.Connect(ctx, endpoint)
	})
	sc.Step(`^Hydra received no token request$`, func() error { return w.hydraTokens("", 0, false) })
	sc.Step(`^Hydra received no new token request$`, func() error { return w.hydraTokens("", 0, true) })
	sc.Step(`^Hydra received (\d+) token requests? for "([^"]+)"$`, func(n int, grant string) error { return w.hydraTokens(grant, n, false) })
	sc.Step(`^Hydra received (\d+) new token requests? for "([^"]+)"$`, func(n int, grant string) error { return w.hydraTokens(grant, n, true) })
	sc.Step(`^the token that reached the remote MCP server was issued by Hydra to "([^"]+)"$`, func(ctx context.Context, client string) error {
		return w.issuedByHydra(ctx, client)
	})
	sc.Step(`^the token that reached the remote MCP server was issued by Hydra to the client the proxy registered$`, func(ctx context.Context) error {
		rw, err := w.real()
		if err != nil {
			return err
		}
		var clients []struct {
			ID   string `json:"client_id"`
			Name string `json:"client_name"`
		}
		if err := rw.rs.HydraAdmin(ctx, "GET", "/admin/clients", nil, &clients); err != nil {
			return err
		}
		for _, c := range clients {
			if c.Name == "mcp-proxy for "+stack.ProxyHost {
				return w.issuedByHydra(ctx, c.ID)
			}
		}
		return fmt.Errorf("Hydra has no client registered by the proxy; its clients: %+v", clients)
	})
	sc.Step(`^the proxy's log shows no credential of the registration$`, func() error {
		rw, err := w.real()
		if err != nil {
			return err
		}
		creds := rw.rs.RegisteredCredentials()
		if len(creds) == 0 {
			return errors.New("Hydra handed out no registration credentials")
		}
		log := w.st.ProxyLog()
		for _, c := range creds {
			if strings.Contains(log, c) {
				return errors.New("the proxy's log shows a credential Hydra handed out in its registration answer")
			}
		}
		return nil
	})
	sc.Step(`^the command fails and prints on its standard output the documented "([^"]+)"$`, func(id string) error {
		e, err := w.example(id)
		if err != nil {
			return err
		}
		if w.exit == 0 {
			return fmt.Errorf("the command succeeded; stdout:\n%s", w.stdout)
		}
		if got, want := strings.TrimSpace(w.stdout), strings.TrimSpace(e.Body); got != want {
			return fmt.Errorf("the command printed:\n%s\nthe docs say:\n%s\n(stderr: %s)", got, want, w.stderr)
		}
		return nil
	})
	sc.Step(`^Hydra's access token has expired$`, w.hydraTokenExpired)
	sc.Step(`^(\w+)'s two MCP clients call the tool "([^"]+)" behind Hydra at once$`, w.twoCallsAtOnce)
	sc.Step(`^both calls answered with the subject "([^"]+)"$`, func(subject string) error {
		rw, err := w.real()
		if err != nil {
			return err
		}
		if len(rw.results) != 2 {
			return fmt.Errorf("%d calls answered, want 2", len(rw.results))
		}
		for i, res := range rw.results {
			w.lastTool = res
			who, err := w.whoami()
			if err != nil {
				return fmt.Errorf("call %d: %w", i+1, err)
			}
			if who.Subject != subject {
				return fmt.Errorf("call %d: subject %q, want %q", i+1, who.Subject, subject)
			}
		}
		return nil
	})
}

func (w *world) realServersRunning(ctx context.Context) error {
	st, err := w.stack()
	if err != nil {
		return err
	}
	local, ok := st.(*stack.Local)
	if !ok {
		return fmt.Errorf("the real servers run on the local stack only, not on %s", st.Mode())
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	rs, err := local.StartRealServers(ctx, stack.RealServerOptions{Dir: realServersDir()})
	if err != nil {
		return err
	}
	rs.Login.SetSubject("alice")
	realWorldsMu.Lock()
	realWorlds[w] = &realWorld{rs: rs, marks: map[string]int{}}
	realWorldsMu.Unlock()
	return nil
}

// registeredAtHydra creates the documented client through Hydra's admin
// API. Its client_secret is the placeholder the page names; the stack's
// UPSTREAM_CLIENT_SECRET takes its place.
func (w *world) registeredAtHydra(ctx context.Context, id string) error {
	rw, err := w.real()
	if err != nil {
		return err
	}
	e, err := w.example(id)
	if err != nil {
		return err
	}
	var client map[string]any
	if err := json.Unmarshal([]byte(e.Body), &client); err != nil {
		return fmt.Errorf("example %q is not JSON: %v", id, err)
	}
	client["client_secret"] = stack.UpstreamClientSecret
	if err := rw.rs.HydraAdmin(ctx, "POST", "/admin/clients", client, nil); err != nil {
		return err
	}
	if rw.ttl > 0 {
		life := rw.ttl.String()
		return rw.rs.HydraAdmin(ctx, "PUT", "/admin/clients/"+fmt.Sprint(client["client_id"])+"/lifespans", map[string]any{
			"authorization_code_grant_access_token_lifespan": life,
			"refresh_token_grant_access_token_lifespan":      life,
		}, nil)
	}
	return nil
}

func (rw *realWorld) mark() {
	for _, g := range []string{"", "authorization_code", "refresh_token", "client_credentials"} {
		rw.marks[g] = rw.rs.TokenRequests(g)
	}
}

func (w *world) callBehindHydra(ctx context.Context, user, name, tool string, args map[string]any) error {
	rw, err := w.real()
	if err != nil {
		return err
	}
	if err := w.callAs(ctx, user, name, tool, args); err != nil {
		return err
	}
	rw.mark()
	return nil
}

func (w *world) hydraTokens(grant string, want int, sinceMark bool) error {
	rw, err := w.real()
	if err != nil {
		return err
	}
	got := rw.rs.TokenRequests(grant)
	if sinceMark {
		got -= rw.marks[grant]
	}
	if got != want {
		what := "token requests"
		if grant != "" {
			what = grant + " " + what
		}
		if sinceMark {
			what = "new " + what
		}
		return fmt.Errorf("Hydra received %d %s, want %d (all: authorization_code %d, refresh_token %d)", got, what, want,
			rw.rs.TokenRequests("authorization_code"), rw.rs.TokenRequests("refresh_token"))
	}
	return nil
}

func (w *world) issuedByHydra(ctx context.Context, client string) error {
	if _, err := w.upstreamFingerprint(ctx); err != nil {
		return err
	}
	who, err := w.whoami()
	if err != nil {
		return err
	}
	if who.Issuer != stack.HydraIssuer {
		return fmt.Errorf("the token names issuer %q, want %s", who.Issuer, stack.HydraIssuer)
	}
	if who.ClientID != client {
		return fmt.Errorf("the token names client %q, want %q", who.ClientID, client)
	}
	return nil
}

// hydraTokenExpired waits until the access token Hydra last issued has
// expired: a deadline, not a signal, since nothing announces it.
func (w *world) hydraTokenExpired(ctx context.Context) error {
	rw, err := w.real()
	if err != nil {
		return err
	}
	if rw.ttl == 0 {
		return errors.New("no access token lifetime was set (Given Hydra's access tokens live N seconds)")
	}
	last := rw.rs.LastTokenAnswer()
	if last.IsZero() {
		return errors.New("Hydra has issued no token yet")
	}
	t := time.NewTimer(time.Until(last.Add(rw.ttl + 250*time.Millisecond)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	rw.mark()
	return nil
}

// twoCallsAtOnce has the user's first and last-named MCP clients call the
// tool together: both start when a gate opens.
func (w *world) twoCallsAtOnce(ctx context.Context, user, tool string) error {
	rw, err := w.real()
	if err != nil {
		return err
	}
	var clients []string
	for k := range w.actors {
		if name, ok := strings.CutPrefix(k, user+"/"); ok {
			clients = append(clients, name)
		}
	}
	if len(clients) != 2 {
		return fmt.Errorf("%s has %d MCP clients, want 2", user, len(clients))
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	rw.results = make([]*mcp.CallToolResult, 2)
	for i, name := range clients {
		a, err := w.client(user, name)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			res, err := a.Call(ctx, tool, map[string]any{})
			rw.mu.Lock()
			rw.results[i], errs[i] = res, err
			rw.mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	return errors.Join(errs...)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
