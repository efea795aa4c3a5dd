package features

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
	"github.com/mcp-proxy/mcp-proxy/proxy/upstream"
)

func init() { moreSteps = append(moreSteps, refreshSteps) }

func refreshSteps(w *world, sc *godog.ScenarioContext) {
	sc.Step(`^the remote token has reached its refresh window$`, w.refreshWindow)
}

// refreshWindow waits until the access token the remote authorization
// server issued last is within the proxy's refresh window (a quarter of
// its life before expiry, docs/advanced.md). The stack's processes share
// no clock the scenario could move, so it waits for that known moment,
// read from the server's own record of when it issued the token.
func (w *world) refreshWindow(ctx context.Context) error {
	if w.tokenLife == 0 {
		return errors.New("the scenario did not say how long the remote access tokens live")
	}
	evs, err := w.events(ctx, stack.ASHost, "token")
	if err != nil {
		return err
	}
	var issued time.Time
	for _, e := range evs {
		if e.Status == http.StatusOK {
			issued = e.Time
		}
	}
	if issued.IsZero() {
		return errors.New("the remote authorization server has issued no token yet")
	}
	at := issued.Add(w.tokenLife - upstream.RefreshSkew(w.tokenLife) + 250*time.Millisecond)
	if left := time.Until(at); left > 0 {
		if left > time.Minute {
			return fmt.Errorf("the refresh window is %v away; use shorter token lives", left)
		}
		t := time.NewTimer(left)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
