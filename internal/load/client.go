package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/bench"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// Users returns n generated accounts, load-0001 and on, each with a
// password of its own.
func Users(n int) []mockas.User {
	users := make([]mockas.User, n)
	for i := range users {
		name := fmt.Sprintf("load-%04d", i+1)
		users[i] = mockas.User{Username: name, Password: name + "-password", Subject: name,
			Email: name + "@example.com", Name: name}
	}
	return users
}

// client is one user's MCP client: its own connections, its own
// authorization and its own MCP session.
type client struct {
	idx  int
	user string
	mc   *actors.MCPClient
}

// endpoint is the proxy's MCP endpoint.
const endpoint = "https://" + bench.ProxyHost + "/mcp"

// callTimeout bounds one tools/call, and a reconnection.
const callTimeout = 10 * time.Second

// authorize signs user in through the proxy (its identity provider, then
// the remote authorization server's consent) with a browser of its own,
// and opens its MCP session.
func authorize(ctx context.Context, h *bench.Harness, idx int, u mockas.User) (*client, error) {
	name := "load-client-" + strings.TrimPrefix(u.Username, "load-")
	mc := actors.NewMCPClientWithPassword(h.NewTransport(), u.Username, u.Password, name,
		clientmeta.MetadataURL(bench.ClientHost, name), clientmeta.RedirectURL(bench.ClientHost, name))
	c := &client{idx: idx, user: u.Username, mc: mc}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := mc.Connect(ctx, endpoint); err != nil {
		return nil, err
	}
	return c, nil
}

// authorizeAll authorizes users, par at a time.
func authorizeAll(ctx context.Context, h *bench.Harness, users []mockas.User, first, par int) ([]*client, error) {
	out := make([]*client, len(users))
	errs := make([]error, len(users))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(users) || ctx.Err() != nil {
					return
				}
				out[i], errs[i] = authorize(ctx, h, first+i, users[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// call sends one whoami and checks that the answer names the client's
// user: the remote server saw this user's own token.
func (c *client) call(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.mc.Call(ctx, "whoami", nil)
	if err != nil {
		return err
	}
	text := actors.ToolText(res)
	if res.IsError {
		return fmt.Errorf("tool error: %.200s", text)
	}
	if !strings.Contains(text, `"subject":"`+c.user+`"`) {
		return fmt.Errorf("wrong user: whoami answered %.200s for %s", text, c.user)
	}
	return nil
}

// reconnect opens a new MCP session, keeping the client's tokens.
func (c *client) reconnect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return c.mc.Reconnect(ctx, endpoint)
}

// Tally counts what happened around the calls of one run of load.
type Tally struct {
	Reconnects, ReconnectFailures atomic.Int64
	// Examples holds the first error text of each kind.
	mu       sync.Mutex
	Examples map[string]string
}

func (t *Tally) example(kind string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Examples == nil {
		t.Examples = map[string]string{}
	}
	if _, ok := t.Examples[kind]; !ok {
		msg, _, _ := strings.Cut(err.Error(), " (browser:")
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		t.Examples[kind] = msg
	}
}

// drive runs every client in a closed loop (a call, its answer checked,
// the next call) for dur, while script runs beside it; it returns every
// request's record and when the run began. A client whose call failed
// opens a new session (keeping its tokens) before it goes on, waiting a
// little after a failed attempt; a failed attempt is a failed request
// too, of kind "initialize: …".
func drive(ctx context.Context, clients []*client, dur time.Duration, tally *Tally, script func(ctx context.Context, start time.Time)) ([]Record, time.Time) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(dur))
	defer cancel()
	per := make([][]Record, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			broken := false
			for ctx.Err() == nil {
				if broken {
					tally.Reconnects.Add(1)
					t0 := time.Now()
					if err := c.reconnect(ctx); err != nil {
						if ctx.Err() != nil {
							return
						}
						tally.ReconnectFailures.Add(1)
						r := Record{Client: c.idx, At: t0.Sub(start), Took: time.Since(t0), Kind: "initialize: " + Classify(err)}
						tally.example(r.Kind, err)
						per[i] = append(per[i], r)
						sleep(ctx, 250*time.Millisecond)
						continue
					}
					broken = false
				}
				t0 := time.Now()
				err := c.call(ctx)
				if err != nil && ctx.Err() != nil {
					return // the run ended mid-call
				}
				r := Record{Client: c.idx, At: t0.Sub(start), Took: time.Since(t0)}
				if err != nil {
					r.Kind = Classify(err)
					if strings.HasPrefix(err.Error(), "wrong user") {
						r.Kind = "wrong user"
					}
					tally.example(r.Kind, err)
					broken = true
				}
				per[i] = append(per[i], r)
			}
		})
	}
	if script != nil {
		wg.Go(func() { script(ctx, start) })
	}
	wg.Wait()
	var all []Record
	for _, p := range per {
		all = append(all, p...)
	}
	return all, start
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// authorizations sums how often the clients' browsers were sent to
// authorize.
func authorizations(clients []*client) int64 {
	var n int64
	for _, c := range clients {
		n += c.mc.Authorizations()
	}
	return n
}
