package features

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cucumber/godog"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/mcpremote"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// Steps of mcp-remote (npm) as a real MCP client that registers itself
// (docs/dynamic-registration.md). The scenarios are tagged @mcp-remote:
// make conformance leaves them out, and says so, when mcp-remote is not
// installed; run on their own they fail with the reason.
func init() {
	moreSteps = append(moreSteps, func(w *world, sc *godog.ScenarioContext) {
		sc.Step(`^(\w+) connects mcp-remote to "([^"]+)"$`, w.connectsMCPRemote)
		sc.Step(`^mcp-remote calls the tool "([^"]+)"$`, w.mcpRemoteCalls)
		sc.Step(`^(\w+) approved mcp-remote at "([^"]+)" by its name "([^"]+)", shown as not verified$`, w.approvedMCPRemote)
	})
}

// mcpRemoteDir is where make mcp-remote-install put mcp-remote.
func mcpRemoteDir() string {
	if d := os.Getenv(mcpremote.DirEnv); d != "" {
		return d
	}
	d, _ := filepath.Abs("../build/mcp-remote")
	return d
}

func (w *world) connectsMCPRemote(ctx context.Context, user, endpoint string) error {
	st, err := w.stack()
	if err != nil {
		return err
	}
	pw, ok := actors.Passwords[user]
	if !ok {
		return fmt.Errorf("no account named %q at the mock servers", user)
	}
	c, err := mcpremote.New(mcpRemoteDir(), st, browser.New(st.Transport(), user, pw))
	if err != nil {
		return err
	}
	w.remote = c
	ctx, cancel := stepContext(ctx)
	defer cancel()
	return c.Connect(ctx, endpoint)
}

func (w *world) mcpRemoteCalls(ctx context.Context, tool string) error {
	if w.remote == nil {
		return fmt.Errorf("mcp-remote was not started")
	}
	ctx, cancel := stepContext(ctx)
	defer cancel()
	res, err := w.remote.Call(ctx, tool, nil)
	if err != nil {
		return err
	}
	w.lastTool = res
	return nil
}

// approvedMCPRemote checks the consent page the user approved at host: the
// client's name, and the not-verified notice of a self-registered client.
func (w *world) approvedMCPRemote(user, host, name string) error {
	if w.remote == nil {
		return fmt.Errorf("mcp-remote was not started")
	}
	for _, v := range w.remote.Browser.Visits() {
		if v.URL.Host != host || v.Action != "approve" || v.Page == nil {
			continue
		}
		page := &browser.PageError{Body: v.Page}
		if notice := page.Element("not-verified"); !strings.HasPrefix(notice, "Not verified.") {
			return fmt.Errorf("the consent page at %s does not mark mcp-remote as not verified: %q", host, notice)
		}
		if !strings.Contains(string(v.Page), "<strong>"+name+"</strong>") {
			return fmt.Errorf("the consent page at %s does not name the client %q: %s", host, name, v.Page)
		}
		return nil
	}
	return fmt.Errorf("%s approved nothing at %s (%s)", user, host, stack.ProxyHost)
}
