package features

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/control"
)

// passwords are the mock servers' default accounts (mockas.DefaultUsers).
var passwords = map[string]string{"alice": "alice-password", "bob": "bob-password"}

// mcpActor is a user with an MCP client: the official MCP Go SDK client
// with its OAuth handler, and the user's browser that the handler opens.
type mcpActor struct {
	user    string
	name    string // the MCP client's name, which picks its metadata document
	browser *browser.Browser
	handler *auth.AuthorizationCodeHandler
	session *mcp.ClientSession
	w       *world
}

func (w *world) actor(user string) (*mcpActor, error) {
	if a, ok := w.actors[user]; ok {
		return a, nil
	}
	pw, ok := passwords[user]
	if !ok {
		return nil, fmt.Errorf("no account named %q at the mock servers", user)
	}
	if w.st == nil {
		return nil, fmt.Errorf("no stack is running")
	}
	a := &mcpActor{user: user, name: user + "-client", browser: browser.New(w.st.Transport(), user, pw), w: w}
	if w.actors == nil {
		w.actors = make(map[string]*mcpActor)
	}
	w.actors[user] = a
	return a, nil
}

func (a *mcpActor) connect(ctx context.Context, endpoint string) error {
	st := a.w.st
	redirect := st.ClientRedirectURL(a.name)
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: st.ClientMetadataURL(a.name)},
		RedirectURL:                    redirect,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			u, err := a.browser.Navigate(ctx, args.URL, redirect)
			if err != nil {
				return nil, err
			}
			q := u.Query()
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization refused: %s: %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		Client: &http.Client{Transport: st.Transport()},
	})
	if err != nil {
		return err
	}
	a.handler = h
	client := mcp.NewClient(&mcp.Implementation{Name: a.name, Version: "1.0.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     endpoint,
		HTTPClient:   &http.Client{Transport: st.Transport()},
		OAuthHandler: h,
		MaxRetries:   -1,
	}, nil)
	if err != nil {
		return fmt.Errorf("%s's MCP client could not connect to %s: %w (browser: %s)", a.user, endpoint, err, a.history())
	}
	a.session = sess
	return nil
}

func (a *mcpActor) call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	if a.session == nil {
		return nil, fmt.Errorf("%s's MCP client is not connected", a.user)
	}
	res, err := a.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("tools/call %s: %w", tool, err)
	}
	return res, nil
}

// tokenFingerprint is the fingerprint of the access token the MCP client
// holds (issued by the proxy).
func (a *mcpActor) tokenFingerprint(ctx context.Context) (string, error) {
	if a.handler == nil {
		return "", fmt.Errorf("%s's MCP client never authorized", a.user)
	}
	ts, err := a.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", fmt.Errorf("%s's MCP client has no token: %v", a.user, err)
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return control.Fingerprint(tok.AccessToken), nil
}

func (a *mcpActor) history() string {
	var b strings.Builder
	for _, v := range a.browser.Visits() {
		fmt.Fprintf(&b, "\n  %s %s%s → %d %s", v.Method, v.URL.Host, v.URL.Path, v.Status, v.Action)
	}
	return b.String()
}

func (a *mcpActor) close() {
	if a.session != nil {
		_ = a.session.Close()
	}
}
