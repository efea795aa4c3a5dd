package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/proxy/tokens"
)

func init() { moreSteps = append(moreSteps, refreshSteps) }

func refreshSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^the remote token has reached its refresh window$`, func(ctx context.Context) error {
		return w.waitForToken(ctx, func(life time.Duration) time.Duration { return life - tokens.RefreshSkew(life) })
	})
	sc.Step(`^the remote token has expired$`, func(ctx context.Context) error {
		return w.waitForToken(ctx, func(life time.Duration) time.Duration { return life })
	})
	sc.Step(`^the remote authorization server answers every request to "([^"]+)" with (\d+)$`, func(ctx context.Context, path string, status int) error {
		evs, err := w.events(ctx, stack.ASHost, "fault")
		if err != nil {
			return err
		}
		w.faultMark = len(evs)
		return w.controlDo(ctx, stack.ASHost, http.MethodPost, "/.test/faults", map[string]any{"path": path, "count": 0, "status": status})
	})
	sc.Step(`^the remote authorization server answers requests to "([^"]+)" again$`, func(ctx context.Context, _ string) error {
		c, err := w.controlClient(stack.ASHost)
		if err != nil {
			return err
		}
		return c.Do(ctx, http.MethodDelete, c.BaseURL+"/.test/faults", nil, nil)
	})
	sc.Step(`^"([^"]+)" failed fewer than (\d+) requests to "([^"]+)"$`, w.failedFewerThan)
	sc.Step(`^(\w+)'s MCP client sends requests with its token to "([^"]+)" until one fails$`, w.sendUntilFail)
	sc.Step(`^every request succeeded until the remote token expired$`, w.succeededUntilExpiry)
	sc.Step(`^(\w+)'s MCP client's requests to "([^"]+)" succeed again within (\d+) seconds$`, w.succeedAgain)
	sc.Step(`^(\w+)'s MCP client's requests to "([^"]+)" reach the remote authorization server again within (\d+) seconds$`, w.reachAgain)
	sc.Step(`^the proxy logged the documented event "([^"]+)" exactly once$`, w.loggedOnce)
	sc.Step(`^the proxy logs the documented event "([^"]+)" within (\d+) seconds$`, func(ctx context.Context, id string, n int) error {
		return poll(ctx, time.Duration(n)*time.Second, func() error { return w.loggedDocumented(id, "") })
	})
}

// issuedAt is when the remote authorization server last issued an access
// token, by its own record.
func (w *world) issuedAt(ctx context.Context) (time.Time, error) {
	if w.tokenLife == 0 {
		return time.Time{}, errors.New("the scenario did not say how long the remote access tokens live")
	}
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return time.Time{}, err
	}
	var issued time.Time
	for _, e := range evs {
		if e.Status == http.StatusOK {
			issued = e.Time
		}
	}
	if issued.IsZero() {
		return time.Time{}, errors.New("the remote authorization server has issued no token yet")
	}
	return issued, nil
}

// waitForToken waits until the access token the remote authorization
// server issued last has lived at(its life), plus a margin: into its
// refresh window (a quarter of its life before expiry, docs/advanced.md)
// or past its expiry. The stack's processes share no clock the scenario
// could move, so it waits for that known moment, read from the server's
// own record of when it issued the token.
func (w *world) waitForToken(ctx context.Context, at func(life time.Duration) time.Duration) error {
	issued, err := w.issuedAt(ctx)
	if err != nil {
		return err
	}
	left := time.Until(issued.Add(at(w.tokenLife) + 250*time.Millisecond))
	if left <= 0 {
		return nil
	}
	if left > time.Minute {
		return fmt.Errorf("the moment is %v away; use shorter token lives", left)
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll calls f until it succeeds or d has passed, returning its last error.
func poll(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still after %v: %w", d, err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// requestRun is a run of requests until one failed: when it started, when
// each successful request was sent, and when the failing one was.
type requestRun struct {
	start, failed time.Time
	ok            []time.Time
}

// sendUntilFail sends requests with user's token every 50 ms until one
// gets another answer than 200; that answer is the scenario's last one.
func (w *world) sendUntilFail(ctx context.Context, user, target string) error {
	run := &requestRun{start: time.Now()}
	deadline := run.start.Add(w.tokenLife + 10*time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		sent := time.Now()
		if err := w.rawWithToken(ctx, user, target); err != nil {
			return err
		}
		if w.resp.StatusCode != http.StatusOK {
			run.failed = sent
			w.untilFail = run
			return nil
		}
		run.ok = append(run.ok, sent)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("%d requests over %v all succeeded; the token never expired", len(run.ok), time.Since(run.start).Round(time.Millisecond))
}

// succeededUntilExpiry checks the last run of requests: it began before
// the token's refresh window, requests inside the window succeeded, and
// the first failure came only once the token had expired (within a
// second of it).
func (w *world) succeededUntilExpiry(ctx context.Context) error {
	run := w.untilFail
	if run == nil {
		return errors.New("no run of requests until one failed")
	}
	issued, err := w.issuedAt(ctx)
	if err != nil {
		return err
	}
	window := issued.Add(w.tokenLife - tokens.RefreshSkew(w.tokenLife))
	expiry := issued.Add(w.tokenLife)
	if !run.start.Before(window) {
		return fmt.Errorf("the requests began %v after the refresh window opened; the scenario must take the server down sooner", run.start.Sub(window))
	}
	inWindow := 0
	for _, t := range run.ok {
		if t.After(window) {
			inWindow++
		}
	}
	if inWindow < 3 {
		return fmt.Errorf("only %d requests succeeded inside the refresh window", inWindow)
	}
	// The proxy counts expires_in from when it sent its token request,
	// a little before the server recorded the answer.
	if early := expiry.Sub(run.failed); early > 200*time.Millisecond {
		return fmt.Errorf("a request failed %v before the token expired: %d %s", early, w.resp.StatusCode, w.body)
	}
	if late := run.failed.Sub(expiry); late > time.Second {
		return fmt.Errorf("requests still succeeded %v after the token expired", late)
	}
	return nil
}

// failedFewerThan counts the requests to path the remote authorization
// server failed with a fault since the scenario made it fail.
func (w *world) failedFewerThan(ctx context.Context, host string, n int, path string) error {
	evs, err := w.events(ctx, host, "fault")
	if err != nil {
		return err
	}
	got := 0
	for _, e := range evs[min(w.faultMark, len(evs)):] {
		if e.Path == path {
			got++
		}
	}
	if got == 0 || got >= n {
		return fmt.Errorf("%s failed %d requests to %s, want at least 1 and fewer than %d", host, got, path, n)
	}
	return nil
}

// succeedAgain sends requests with user's token until one gets 200.
func (w *world) succeedAgain(ctx context.Context, user, target string, n int) error {
	return poll(ctx, time.Duration(n)*time.Second, func() error {
		if err := w.rawWithToken(ctx, user, target); err != nil {
			return err
		}
		if w.resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the last answer was %d %s", w.resp.StatusCode, w.body)
		}
		return nil
	})
}

// reachAgain sends requests with user's token until one gets another
// answer than the proxy's 502 for an unreachable authorization server:
// the proxy tried again and the server answered.
func (w *world) reachAgain(ctx context.Context, user, target string, n int) error {
	return poll(ctx, time.Duration(n)*time.Second, func() error {
		if err := w.rawWithToken(ctx, user, target); err != nil {
			return err
		}
		if w.resp.StatusCode == http.StatusBadGateway {
			return fmt.Errorf("the last answer was %d %s", w.resp.StatusCode, w.body)
		}
		return nil
	})
}

// loggedOnce checks that the proxy logged exactly one line of the
// documented event id, and that it is like the documented one.
func (w *world) loggedOnce(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	var want struct{ Event string }
	if err := json.Unmarshal([]byte(e.Body), &want); err != nil || want.Event == "" {
		return fmt.Errorf("example %q is not a log line with an event: %v", id, err)
	}
	n := 0
	for _, line := range strings.Split(w.st.ProxyLog(), "\n") {
		var got struct{ Event string }
		if json.Unmarshal([]byte(line), &got) == nil && got.Event == want.Event {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("the proxy logged %d %s lines, want exactly 1", n, want.Event)
	}
	return w.loggedDocumented(id, "")
}
