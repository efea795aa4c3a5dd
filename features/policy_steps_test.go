package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cucumber/godog"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

func init() { moreSteps = append(moreSteps, policySteps) }

// policyState is what the access policy steps keep between steps.
type policyState struct {
	tools   []string       // the last tools/list an MCP client got
	refusal *jsonrpc.Error // the last refused tool call
}

func policySteps(w *world, sc *godog.ScenarioContext) {
	ps := &policyState{}
	sc.Step(`^(\w+)'s MCP client lists the tools$`, func(ctx context.Context, user string) error {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		res, err := a.Session().ListTools(ctx, nil)
		if err != nil {
			return err
		}
		ps.tools = nil
		for _, t := range res.Tools {
			ps.tools = append(ps.tools, t.Name)
		}
		return nil
	})
	sc.Step(`^the tools listed (include|do not include) "([^"]+)"$`, func(which, tool string) error {
		if has := slices.Contains(ps.tools, tool); has != (which == "include") {
			return fmt.Errorf("the tools listed are %q", ps.tools)
		}
		return nil
	})
	sc.Step(`^(\w+)'s MCP client calls the tool "([^"]+)" and is refused$`, func(ctx context.Context, user, tool string) error {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		ctx, cancel := stepContext(ctx)
		defer cancel()
		res, err := a.Call(ctx, tool, map[string]any{"text": "x"})
		if err == nil {
			return fmt.Errorf("the call of %s succeeded: %+v", tool, res)
		}
		ps.refusal = nil
		if !errors.As(err, &ps.refusal) {
			return fmt.Errorf("the call of %s failed, but not with a JSON-RPC error: %w", tool, err)
		}
		return nil
	})
	sc.Step(`^the refusal is the documented "([^"]+)"$`, ps.refusalIsDocumented(w))
	sc.Step(`^the refusal names the error "([^"]+)"$`, func(code string) error {
		if ps.refusal == nil {
			return errors.New("no call was refused")
		}
		var data map[string]string
		if err := json.Unmarshal(ps.refusal.Data, &data); err != nil || data["error"] != code {
			return fmt.Errorf("the refusal %+v (data %s) does not name %s", ps.refusal, ps.refusal.Data, code)
		}
		return nil
	})
	sc.Step(`^the remote MCP server never received a call of the tool "([^"]+)"$`, func(ctx context.Context, tool string) error {
		evs, err := w.events(ctx, stack.UpstreamHost, "mcp")
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Detail["tool_name"] == tool {
				return fmt.Errorf("the remote MCP server received a call of %s", tool)
			}
		}
		return nil
	})
	sc.Step(`^(\w+)'s MCP client posts a "([^"]+)" of "([^"]+)" with the header ([\w-]+) "([^"]+)"$`, w.postsWithHeader)
	sc.Step(`^the answer is the documented JSON-RPC error "([^"]+)"$`, w.answerIsDocumentedRPCError)
	sc.Step(`^the operator saves the documented "([^"]+)" as "([^"]+)"$`, func(id, name string) error {
		e, err := w.example(id)
		if err != nil {
			return err
		}
		st, err := w.stack()
		if err != nil {
			return err
		}
		return st.WriteFile(name, []byte(e.Body))
	})
	sc.Step(`^the page (\w+)'s browser shows is kept for the browser test as "([^"]+)"$`, func(user, name string) error {
		if err := w.browserShowsDocumentedPage(user); err != nil {
			return err
		}
		dir, err := filepath.Abs(filepath.Join(*buildDir, "pages"))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), w.page.Body, 0o644)
	})
	sc.Step(`^the operator runs the documented command "([^"]+)"$`, func(ctx context.Context, id string) error {
		e, err := w.example(id)
		if err != nil {
			return err
		}
		return w.operatorRuns(ctx, strings.TrimSpace(e.Body))
	})
}

// browserShowsDocumentedPage makes sure the scenario has the error page
// user's browser stopped at.
func (w *world) browserShowsDocumentedPage(user string) error {
	if w.page == nil {
		a, err := w.actor(user)
		if err != nil {
			return err
		}
		w.page = a.PageError
	}
	if w.page == nil {
		return fmt.Errorf("%s's browser did not stop at an error page", user)
	}
	return nil
}

// refusalIsDocumented compares the last refusal with a documented JSON-RPC
// answer, whose "<...>" placeholders stand for any text.
func (ps *policyState) refusalIsDocumented(w *world) func(string) error {
	return func(id string) error {
		e, err := w.example(id)
		if err != nil {
			return err
		}
		if ps.refusal == nil {
			return errors.New("no call was refused")
		}
		var doc struct {
			Error struct {
				Code    int64
				Message string
				Data    map[string]string
			}
		}
		if err := json.Unmarshal([]byte(e.Body), &doc); err != nil {
			return fmt.Errorf("example %q: %v", id, err)
		}
		var data map[string]string
		_ = json.Unmarshal(ps.refusal.Data, &data)
		if ps.refusal.Code != doc.Error.Code || !placeholders(doc.Error.Message).MatchString(ps.refusal.Message) {
			return fmt.Errorf("the refusal is %d %q; the docs say %d %q", ps.refusal.Code, ps.refusal.Message, doc.Error.Code, doc.Error.Message)
		}
		for k, v := range doc.Error.Data {
			if !placeholders(v).MatchString(data[k]) || data[k] == "" {
				return fmt.Errorf("the refusal's data %v; the docs say %v", data, doc.Error.Data)
			}
		}
		if !strings.HasSuffix(ps.refusal.Message, data["request_id"]) {
			return fmt.Errorf("the refusal's message %q does not end in its request id %q", ps.refusal.Message, data["request_id"])
		}
		return nil
	}
}

// placeholders makes a documented text a pattern: each <...> stands for a
// run of non-space characters.
func placeholders(doc string) *regexp.Regexp {
	parts := regexp.MustCompile(`<[^<>]+>`).Split(doc, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `\S+`) + `$`)
}

// postsWithHeader sends, by hand, a JSON-RPC request of method naming
// name with the user's token and one mirrored header.
func (w *world) postsWithHeader(ctx context.Context, user, method, name, header, value string) error {
	a, err := w.actor(user)
	if err != nil {
		return err
	}
	tok, err := a.Token(ctx)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"name":%q,"arguments":{}}}`, method, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+stack.ProxyHost+"/mcp", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(header, value)
	return w.send(req)
}

// answerIsDocumentedRPCError compares the last answer's body with a
// documented JSON-RPC error: the same id and code, the message and data
// as documented ("<...>" stands for any text), and a request id in data
// that is the answer's X-Request-Id.
func (w *world) answerIsDocumentedRPCError(id string) error {
	e, err := w.example(id)
	if err != nil {
		return err
	}
	type rpcAnswer struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int64             `json:"code"`
			Message string            `json:"message"`
			Data    map[string]string `json:"data"`
		} `json:"error"`
	}
	var doc, got rpcAnswer
	if err := json.Unmarshal([]byte(e.Body), &doc); err != nil {
		return fmt.Errorf("example %q: %v", id, err)
	}
	if err := json.Unmarshal(w.body, &got); err != nil || got.JSONRPC != "2.0" {
		return fmt.Errorf("the answer is not a JSON-RPC error (%v): %s", err, w.body)
	}
	if string(got.ID) != string(doc.ID) || got.Error.Code != doc.Error.Code || !placeholders(doc.Error.Message).MatchString(got.Error.Message) {
		return fmt.Errorf("the answer is %s; the docs say %s", w.body, e.Body)
	}
	for k, v := range doc.Error.Data {
		if got.Error.Data[k] == "" || !placeholders(v).MatchString(got.Error.Data[k]) {
			return fmt.Errorf("the answer's data %v; the docs say %v", got.Error.Data, doc.Error.Data)
		}
	}
	if rid := w.resp.Header.Get("X-Request-Id"); rid == "" || got.Error.Data["request_id"] != rid {
		return fmt.Errorf("the answer's request_id %q is not its X-Request-Id %q", got.Error.Data["request_id"], rid)
	}
	return nil
}
