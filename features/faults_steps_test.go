package features

import (
	"context"
	"fmt"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, faultSteps) }

func faultSteps(w *world, sc *godog.ScenarioContext) {
	service := map[string]string{
		"the remote authorization server": stack.ASHost,
		"the remote MCP server":           stack.UpstreamHost,
	}
	op := func(what string, f func(stack.Stack, context.Context, string) error) func(context.Context) error {
		return func(ctx context.Context) error {
			ctx, cancel := stepContext(ctx)
			defer cancel()
			return f(w.st, ctx, service[what])
		}
	}
	for what := range service {
		sc.Step(`^`+what+` stops$`, op(what, stack.Stack.StopService))
		sc.Step(`^`+what+` starts again$`, op(what, stack.Stack.StartService))
		sc.Step(`^`+what+` is paused$`, op(what, stack.Stack.PauseService))
		sc.Step(`^`+what+` is unpaused$`, op(what, stack.Stack.UnpauseService))
		sc.Step(`^`+what+` restarts$`, op(what, stack.Stack.RestartService))
	}
	sc.Step(`^the answer has status (\d+)$`, func(status int) error {
		if w.resp.StatusCode != status {
			return fmt.Errorf("status %d, want %d: %s", w.resp.StatusCode, status, w.body)
		}
		return nil
	})
}
