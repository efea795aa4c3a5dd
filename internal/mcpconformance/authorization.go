package mcpconformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/browser"
	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// The authorization leg: the suite's authorization mode against the
// proxy's own authorization server (the route host's issuer,
// https://mcp.example.com), as MCP clients reach it: the client id is a
// Client ID Metadata Document at client.example.net, or a client that
// registered itself at the proxy (RFC 7591); each with and without an RFC
// 8707 resource. The suite prints the authorization URL and waits for its
// callback; alice's headless browser follows it through the real pages
// (the sign-in at the identity provider, the proxy's consent page, the
// remote authorization server's) and lets the last redirect reach the
// suite. The baseline is the same against the stack's remote authorization
// server (mockas at auth.provider.com), a plain authorization server.

// authTarget is an authorization server the leg grades.
type authTarget struct {
	client, description string
	host                string // its name in the stack; the issuer is https://host
	register            string // its registration endpoint
	resource            string // the resource to ask for
}

// authCase is one run of the authorization mode.
type authCase struct {
	kind     string // "cimd" or "registered"
	resource bool
}

func (c authCase) name() string {
	if c.resource {
		return c.kind + "+resource"
	}
	return c.kind
}

var authCases = []authCase{{"cimd", false}, {"cimd", true}, {"registered", false}, {"registered", true}}

// authScenarios are the authorization mode's scenarios, in the order it
// runs them.
var authScenarios = []string{"authorization-server-metadata-endpoint", "authorization-code-grant"}

// authRunTimeout bounds one run of the authorization mode (the suite
// itself waits five minutes for its callback).
const authRunTimeout = 2 * time.Minute

func runAuthorizationLeg(ctx context.Context, cfg *Config) (*Leg, []string, []string, error) {
	s, err := stack.NewLocal()
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.Close()
	if err := s.WriteConfig(authorizationLegConfig); err != nil {
		return nil, nil, nil, err
	}
	if err := s.StartProxy(ctx); err != nil {
		return nil, nil, nil, err
	}
	// The remote authorization server registers clients only when told to.
	if err := s.AS().Do(ctx, http.MethodPatch, s.AS().BaseURL+"/.test/settings", strings.NewReader(`{"dcr": true}`), nil); err != nil {
		return nil, nil, nil, fmt.Errorf("turning on registration at %s: %w", stack.ASHost, err)
	}
	dir := filepath.Join(cfg.Out, LegAuthorization)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	caFile := filepath.Join(dir, "stack-ca.pem")
	if err := os.WriteFile(caFile, s.CACertPEM(), 0o644); err != nil {
		return nil, nil, nil, err
	}
	hosts := map[string]string{}
	for _, h := range []string{stack.ProxyHost, stack.ASHost} {
		addr, err := s.Addr(h)
		if err != nil {
			return nil, nil, nil, err
		}
		hosts[h+":443"] = addr
	}
	hostsJSON, _ := json.Marshal(hosts)
	env := map[string]string{"NODE_EXTRA_CA_CERTS": caFile, "MCPC_HOSTS": string(hostsJSON)}

	targets := []authTarget{
		{client: "mcp-proxy", description: "through mcp-proxy: its authorization server", host: stack.ProxyHost,
			register: "https://" + stack.ProxyHost + "/.mcp-proxy/register", resource: authorizationResource},
		{client: "baseline", description: "baseline: mockas, the stack's remote authorization server, no proxy", host: stack.ASHost,
			register: "https://" + stack.ASHost + "/register", resource: stack.UpstreamResource},
	}
	leg := &Leg{Name: LegAuthorization, Title: "The proxy as an OAuth authorization server",
		Description: "The suite's authorization mode against the proxy's own authorization server (issuer https://mcp.example.com), with a Client ID Metadata Document client and with a client that registered itself (RFC 7591), each with and without resource. The suite prints the authorization URL and waits for its callback; alice's headless browser signs in at the identity provider, approves on the proxy's consent page and at the remote authorization server, and the last redirect reaches the suite. The baseline runs the same against the stack's remote authorization server (mockas), which has no proxy in front."}
	var failures, problems []string
	for _, t := range targets {
		cr := ClientResult{Client: t.client, Description: t.description}
		start := time.Now()
		for _, c := range authCases {
			results := runAuthorizationCase(ctx, cfg, s, t, c, env, filepath.Join(dir, t.client, c.name()))
			for _, res := range results {
				cfg.progress("mcp-conformance authorization: %-10s %-50s %d passed, %d failed\n", t.client, res.Scenario, res.ChecksPassed, res.ChecksFailed)
				res.Scored = true
				cr.Total++
				if t.client == "mcp-proxy" {
					if reason, ok := cfg.Excuses[LegAuthorization][res.Scenario]; ok {
						if p := applyExcuse(&res, reason, t.client, cfg.ExcusesFile); p != "" {
							problems = append(problems, p)
						}
					}
					cr.count(res, &failures)
				} else {
					cr.count(res, &problems)
				}
				cr.Scenarios = append(cr.Scenarios, res)
			}
		}
		cr.Seconds = time.Since(start).Seconds()
		if t.client == "mcp-proxy" {
			var rows []string
			for _, sc := range cr.Scenarios {
				rows = append(rows, sc.Scenario)
			}
			problems = append(problems, staleExcuses("mcp-proxy", cfg.Excuses[LegAuthorization], rows, cfg.ExcusesFile, "the authorization leg")...)
		}
		leg.Clients = append(leg.Clients, cr)
	}
	if d := s.RefusedDials(); len(d) > 0 {
		problems = append(problems, "authorization leg: the stack refused dials outside loopback: "+strings.Join(d, "; "))
	}
	return leg, failures, problems, nil
}

// authorizationLegConfig is the Quick Start's configuration but for the
// route's to, which names the remote MCP endpoint itself: a client that
// names no resource is authorized for the route as a whole, and the proxy
// then connects to the remote server at to (see authorizationResource).
var authorizationLegConfig = fmt.Sprintf(`tls:
  cert_file: tls/mcp.example.com.crt
  key_file: tls/mcp.example.com.key

identity_provider:
  issuer: https://%s
  client_id: mcp-proxy
  client_secret: ${%s}

storage:
  type: memory

routes:
  - from: https://%s
    to: %s
    mcp:
      server: {}
`, stack.IdPHost, stack.IdPClientSecretEnv, stack.ProxyHost, stack.UpstreamResource)

// authorizationResource is the resource the leg's clients name at the
// proxy: the route's MCP endpoint, its root, since its to is the remote
// MCP endpoint.
const authorizationResource = "https://" + stack.ProxyHost

// runAuthorizationCase runs the authorization mode once against t and
// returns one result per scenario, named CASE/SCENARIO.
func runAuthorizationCase(ctx context.Context, cfg *Config, s *stack.Local, t authTarget, c authCase, env map[string]string, out string) []ScenarioResult {
	failAll := func(why string) []ScenarioResult {
		var rs []ScenarioResult
		for _, sc := range authScenarios {
			rs = append(rs, ScenarioResult{Scenario: c.name() + "/" + sc, Verdict: Failed, Reason: why})
		}
		return rs
	}
	if err := os.RemoveAll(out); err != nil {
		return failAll(err.Error())
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return failAll(err.Error())
	}
	port, err := freePort()
	if err != nil {
		return failAll(err.Error())
	}
	callback := clientmeta.LoopbackRedirectURL(port)
	clientID := s.ClientMetadataURL(clientmeta.LoopbackName(port))
	if c.kind == "registered" {
		if clientID, err = register(ctx, s.Transport(), t.register, callback); err != nil {
			return failAll(fmt.Sprintf("registering a client at %s: %v", t.register, err))
		}
	}
	args := []string{"authorization", "--url", "https://" + t.host, "--client-id", clientID, "-p", fmt.Sprint(port), "-o", out}
	if c.resource {
		args = append(args, "--resource", t.resource)
	}
	runCtx, cancel := context.WithTimeout(ctx, authRunTimeout)
	defer cancel()
	cmd := cfg.Suite.Command(runCtx, env, args...)
	var buf syncBuffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, &buf
	if cfg.SuiteLog != nil {
		cmd.Stderr = io.MultiWriter(&buf, cfg.SuiteLog)
	}
	if err := cmd.Start(); err != nil {
		return failAll("the suite did not run: " + err.Error())
	}
	// The suite prints the authorization URL after "Access the following
	// URL"; the browser takes it from there.
	var drive error
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		next := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&buf, line)
			if cfg.SuiteLog != nil {
				fmt.Fprintln(cfg.SuiteLog, line)
			}
			switch {
			case strings.Contains(line, "Access the following URL"):
				next = true
			case next && strings.HasPrefix(strings.TrimSpace(line), "http"):
				next = false
				if drive = signInAndReturn(runCtx, s, strings.TrimSpace(line), callback); drive != nil {
					cancel() // the suite would wait five minutes for a callback that will not come
				}
			}
		}
	})
	err = cmd.Wait()
	pw.Close()
	wg.Wait()
	_ = os.WriteFile(filepath.Join(out, "suite-output.txt"), buf.Bytes(), 0o644)
	byName, readErr := readResultDirs(out, "authorization-server")
	var rs []ScenarioResult
	for _, sc := range authScenarios {
		res, ok := byName[sc]
		switch {
		case drive != nil && sc == "authorization-code-grant":
			res = ScenarioResult{Verdict: Failed, Reason: "the headless sign-in did not reach the suite's callback: " + drive.Error(), Dir: res.Dir}
		case !ok:
			why := lastLines(buf.String(), 2)
			if readErr != nil {
				why = readErr.Error()
			} else if err != nil {
				why = fmt.Sprintf("%v: %s", err, why)
			}
			res = ScenarioResult{Verdict: Failed, Reason: "the suite wrote no checks.json for it: " + why}
		case res.ChecksPassed == 0 && res.ChecksFailed == 0:
			// A check the suite skipped graded nothing: a missing
			// prerequisite, which fails.
			res.Verdict, res.Reason = Failed, "the suite graded nothing: skipped "+strings.Join(res.Skipped, "; ")
		default:
			j := Judge(res.FailedChecks, 0, "", false)
			res.Verdict, res.Reason = j.Verdict, j.Reason
		}
		res.Scenario = c.name() + "/" + sc
		rs = append(rs, res)
	}
	return rs
}

// signInAndReturn is alice at the authorization URL: her browser (a fresh
// one, with no session anywhere) follows the redirects and fills in the
// forms it meets, and when a redirect leads to the suite's callback it
// requests it, as a browser does.
func signInAndReturn(ctx context.Context, s *stack.Local, authURL, callback string) error {
	b := browser.New(s.Transport(), "alice", actors.Passwords["alice"])
	u, err := b.Navigate(ctx, authURL, callback)
	if err != nil {
		return err
	}
	// The suite prints the URL before its callback listens: a fast sign-in
	// can arrive first, and is let in once it does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return fmt.Errorf("the suite's callback %s: %w", callback, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// register registers a public client with redirectURI at endpoint (RFC
// 7591), as an MCP client that registers itself does, and returns its
// client id.
func register(ctx context.Context, transport http.RoundTripper, endpoint, redirectURI string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name":                "official MCP conformance suite",
		"redirect_uris":              []string{redirectURI},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(b, &r); resp.StatusCode != http.StatusCreated || err != nil || r.ClientID == "" {
		return "", fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, oneLine(string(b), 200))
	}
	return r.ClientID, nil
}

// resultDir is the name of a directory the suite writes for a scenario:
// PREFIX-SCENARIO-2026-12-07T06-48-04-349Z.
var resultDir = regexp.MustCompile(`^(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// readResultDirs reads the checks of every scenario directory under out
// whose name starts with prefix-, by scenario: the counts and the failing
// checks, the verdict left to the caller.
func readResultDirs(out, prefix string) (map[string]ScenarioResult, error) {
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	byName := map[string]ScenarioResult{}
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		name, ok := strings.CutPrefix(m[1], prefix+"-")
		if !ok {
			continue
		}
		dir := filepath.Join(out, e.Name())
		checks, err := readChecks(filepath.Join(dir, "checks.json"))
		if err != nil {
			continue // no result: the scenario reads as missing
		}
		j := countChecks(checks)
		j.Scenario, j.Dir = name, dir
		byName[name] = j
	}
	if len(byName) == 0 {
		return byName, errors.New("no scenario results under " + out)
	}
	return byName, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }
