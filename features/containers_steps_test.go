package features

import (
	"context"
	"fmt"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// The steps of containers.feature: the docs' container commands.
func init() {
	moreSteps = append(moreSteps, func(w *world, sc *godog.ScenarioContext) {
		sc.Step(`^the operator runs the documented "([^"]+)" in the configuration's directory$`, w.runsDocumentedDocker)
	})
}

// runsDocumentedDocker runs a documented shell example that starts the
// proxy with docker run. Only a stack that carries out docker commands can.
func (w *world) runsDocumentedDocker(ctx context.Context, id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	st, err := w.stack()
	if err != nil {
		return err
	}
	runner, ok := st.(stack.DockerRunner)
	if !ok {
		return fmt.Errorf("the %s stack cannot run %q: %w", st.Mode(), id, stack.ErrNeedsContainers)
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	return runner.StartProxyWithDocker(ctx, e.Body)
}
