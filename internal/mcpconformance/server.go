package mcpconformance

import (
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
	"slices"
	"strings"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/actors"
	"github.com/mcp-proxy/mcp-proxy/internal/stack"
)

// The server leg: the suite's server mode against the MCP Go SDK's
// everything-server, once directly and once through a route of the proxy,
// for the stateless wire of one revision (2026-07-28) and the stateful
// wire of another (2025-11-25). The proxy serves both routes on one
// loopback port, as https://localhost:PORT and https://127.0.0.1:PORT, so
// that the suite's DNS rebinding scenario, which needs a loopback URL,
// applies; the suite reaches them with the stack's CA, alice's token for
// the route, and HTTPS where it assumes plain http (preload.mjs).

// serverHalf is one wire of the server leg.
type serverHalf struct {
	revision  string
	stateless bool
	// routeHost is the route's host on the proxy's port.
	routeHost string
}

func (cfg *Config) serverHalves() []serverHalf {
	return []serverHalf{
		{revision: cfg.Revision, stateless: true, routeHost: "localhost"},
		{revision: cfg.StatefulRevision, stateless: false, routeHost: "127.0.0.1"},
	}
}

// runServerLeg runs the server leg: every scenario of each half's
// requirement set (scored or not), direct and through the proxy, and
// compares the failure sets scenario by scenario.
func runServerLeg(ctx context.Context, cfg *Config) (*Leg, []string, []string, error) {
	if cfg.EverythingServer == "" {
		return nil, nil, nil, errors.New("no everything-server binary (make mcp-conformance builds it)")
	}
	if _, err := os.Stat(cfg.EverythingServer); err != nil {
		return nil, nil, nil, fmt.Errorf("the everything-server: %w (make mcp-conformance builds it)", err)
	}
	halves := cfg.serverHalves()
	reqs := make([]*Requirements, len(halves))
	fixtures := make([]string, len(halves))
	for i, h := range halves {
		req, err := cfg.Suite.Requirements(h.revision)
		if err != nil {
			return nil, nil, nil, err
		}
		reqs[i] = req
		addr, stop, err := startFixture(ctx, cfg.EverythingServer, h.stateless, filepath.Join(cfg.Out, LegServer, "everything-server-"+h.revision+".log"))
		if err != nil {
			return nil, nil, nil, err
		}
		defer stop()
		fixtures[i] = addr
	}

	s, err := stack.NewLocal()
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.Close()
	port, err := freePort()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, h := range halves {
		s.TrustLoopbackHost(h.routeHost)
	}
	if err := s.WriteConfig(serverLegConfig(port, halves, fixtures)); err != nil {
		return nil, nil, nil, err
	}
	if err := s.StartProxy(ctx); err != nil {
		return nil, nil, nil, err
	}
	caFile := filepath.Join(cfg.Out, LegServer, "stack-ca.pem")
	if err := os.MkdirAll(filepath.Dir(caFile), 0o755); err != nil {
		return nil, nil, nil, err
	}
	if err := os.WriteFile(caFile, s.CACertPEM(), 0o644); err != nil {
		return nil, nil, nil, err
	}

	leg := &Leg{Name: LegServer, Title: "The proxy as the MCP server its users' clients reach",
		Description: fmt.Sprintf("The suite's server mode against the MCP Go SDK's everything-server, once directly and once through a route of mcp-proxy (alice's token on every request), for the stateless wire of %s and the stateful wire of %s. Every scenario runs, scored or not; through the proxy a scenario must fail exactly the checks it fails directly.", halves[0].revision, halves[1].revision)}
	proxy := ClientResult{Client: "mcp-proxy", Description: "through mcp-proxy"}
	direct := ClientResult{Client: "baseline", Description: "baseline: " + cfg.Fixture + ", no proxy"}
	var failures, problems []string
	for i, h := range halves {
		req := reqs[i]
		leg.Requirements = append(leg.Requirements, req.File())
		proxied := fmt.Sprintf("https://%s/mcp", net.JoinHostPort(h.routeHost, fmt.Sprint(port)))
		token, err := signIn(ctx, s, proxied)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: alice's MCP client could not sign in at %s: %w", h.revision, proxied, err)
		}
		sr := serverRun{suite: cfg.Suite, revision: h.revision, log: cfg.SuiteLog}
		directURL := "http://" + fixtures[i] + "/mcp"
		proxyEnv := map[string]string{"NODE_EXTRA_CA_CERTS": caFile, "MCPC_ORIGIN": "https://" + net.JoinHostPort(h.routeHost, fmt.Sprint(port)), "MCPC_BEARER": token}
		start := time.Now()
		d, err := sr.run(ctx, directURL, nil, filepath.Join(cfg.Out, LegServer, "baseline", h.revision), "")
		if err != nil {
			return nil, nil, nil, err
		}
		direct.Seconds += time.Since(start).Seconds()
		start = time.Now()
		p, err := sr.run(ctx, proxied, proxyEnv, filepath.Join(cfg.Out, LegServer, "mcp-proxy", h.revision), "")
		if err != nil {
			return nil, nil, nil, err
		}
		proxy.Seconds += time.Since(start).Seconds()
		names := req.Server
		for _, n := range req.NotScored {
			if n.Leg == LegServer {
				names = append(names, n.Scenario)
			}
		}
		for _, name := range names {
			row := h.revision + "/" + name
			dr, pr := d.result(name), p.result(name)
			dr.Scenario, pr.Scenario = row, row
			dr.Scored, pr.Scored = req.Scored(LegServer, name), req.Scored(LegServer, name)
			if !sameFailures(dr, pr) {
				// Some checks are timing sensitive: a difference must show
				// again when the scenario runs alone, on both sides.
				dir := filepath.Join(cfg.Out, LegServer, "rerun", h.revision, name)
				d2, err1 := sr.run(ctx, directURL, nil, filepath.Join(dir, "baseline"), name)
				p2, err2 := sr.run(ctx, proxied, proxyEnv, filepath.Join(dir, "mcp-proxy"), name)
				if err := errors.Join(err1, err2); err != nil {
					return nil, nil, nil, err
				}
				first := describeDifference(dr, pr)
				dr2, pr2 := d2.result(name), p2.result(name)
				dr2.Scenario, pr2.Scenario, dr2.Scored, pr2.Scored = row, row, dr.Scored, pr.Scored
				dr, pr = dr2, pr2
				if sameFailures(dr, pr) {
					pr.Reason = "the full run differed (" + first + "); the scenario run alone failed the same checks on both sides"
				}
			}
			judgeServer(&dr, &pr)
			if reason, ok := cfg.Excuses[LegServer][row]; ok {
				if p := applyExcuse(&pr, reason, "mcp-proxy", cfg.ExcusesFile); p != "" {
					problems = append(problems, p)
				}
			}
			cfg.progress("mcp-conformance server: %-50s direct %d passed, %d failed; mcp-proxy %d passed, %d failed: %s\n", row, dr.ChecksPassed, dr.ChecksFailed, pr.ChecksPassed, pr.ChecksFailed, pr.Verdict)
			if dr.Scored && dr.Verdict != Passed {
				problems = append(problems, fmt.Sprintf("baseline: %s failed directly, though %s scores it: the fixture or the harness is broken: %s", row, req.File(), oneLine(dr.Reason, 200)))
			}
			direct.Total++
			direct.count(dr, new([]string))
			direct.Scenarios = append(direct.Scenarios, dr)
			proxy.Total++
			proxy.count(pr, &failures)
			proxy.Scenarios = append(proxy.Scenarios, pr)
		}
	}
	var rows []string
	for _, sc := range proxy.Scenarios {
		rows = append(rows, sc.Scenario)
	}
	problems = append(problems, staleExcuses("mcp-proxy", cfg.Excuses[LegServer], rows, cfg.ExcusesFile, "the server leg")...)
	if d := s.RefusedDials(); len(d) > 0 {
		problems = append(problems, "server leg: the stack refused dials outside loopback: "+strings.Join(d, "; "))
	}
	leg.Clients = []ClientResult{proxy, direct}
	return leg, failures, problems, nil
}

// judgeServer sets the verdicts of one server scenario: direct passes
// when no check fails (a WARNING does not fail it: the suite does not
// count it); through the proxy it passes when no check fails, fails as
// direct when it fails exactly the checks direct does, and fails
// otherwise.
func judgeServer(dr, pr *ScenarioResult) {
	if ids := dr.failures(); dr.Dir != "" && len(ids) > 0 {
		dr.Verdict, dr.Reason = Failed, "failing checks: "+strings.Join(ids, ", ")
	}
	switch {
	case !sameFailures(*dr, *pr):
		pr.Verdict, pr.Reason = Failed, joinReason(describeDifference(*dr, *pr), pr.Reason)
	case len(pr.failures()) > 0:
		pr.Verdict, pr.Reason = AsDirect, joinReason("the same failing checks as direct: "+strings.Join(pr.failures(), ", "), pr.Reason)
	default:
		pr.Verdict = Passed
	}
}

func joinReason(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// sameFailures reports whether two runs of a scenario failed the same
// checks (both ran: a missing result is never the same).
func sameFailures(a, b ScenarioResult) bool {
	if a.Dir == "" || b.Dir == "" {
		return false
	}
	return slices.Equal(a.failures(), b.failures())
}

// describeDifference says which failing checks one side has and the other
// not.
func describeDifference(direct, proxy ScenarioResult) string {
	if proxy.Dir == "" {
		return "no result through the proxy: " + proxy.Reason
	}
	if direct.Dir == "" {
		return "no direct result: " + direct.Reason
	}
	d, p := direct.failures(), proxy.failures()
	var onlyProxy, onlyDirect []string
	for _, id := range p {
		if !slices.Contains(d, id) {
			onlyProxy = append(onlyProxy, id+" ("+checkMessage(proxy, id)+")")
		}
	}
	for _, id := range d {
		if !slices.Contains(p, id) {
			onlyDirect = append(onlyDirect, id)
		}
	}
	var parts []string
	if len(onlyProxy) > 0 {
		parts = append(parts, "fails through the proxy only: "+strings.Join(onlyProxy, ", "))
	}
	if len(onlyDirect) > 0 {
		parts = append(parts, "fails direct only: "+strings.Join(onlyDirect, ", "))
	}
	return strings.Join(parts, "; ")
}

func checkMessage(r ScenarioResult, id string) string {
	for _, c := range r.FailedChecks {
		if c.ID == id && c.Status == statusFailure {
			if c.ErrorMessage != "" {
				return oneLine(c.ErrorMessage, 160)
			}
			return oneLine(c.Description, 160)
		}
	}
	return ""
}

// serverRun runs the suite's server mode.
type serverRun struct {
	suite    Suite
	revision string
	log      io.Writer
}

// serverResults are the scenario results of one server mode run, by
// scenario.
type serverResults struct {
	byName map[string]ScenarioResult
	// why is what the run said when a scenario has no result.
	why string
}

func (r serverResults) result(name string) ScenarioResult {
	if res, ok := r.byName[name]; ok {
		return res
	}
	return ScenarioResult{Scenario: name, Verdict: Failed, Reason: "the suite wrote no checks.json for it: " + r.why}
}

// run runs the server mode against url into out: the whole requirement
// set, or only scenario (at the set's revision) when it is set.
func (sr serverRun) run(ctx context.Context, url string, env map[string]string, out, scenario string) (serverResults, error) {
	if err := os.RemoveAll(out); err != nil {
		return serverResults{}, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return serverResults{}, err
	}
	cmd := sr.suite.Command(ctx, env, serverArgs(url, out, sr.revision, scenario)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if sr.log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&buf, sr.log), io.MultiWriter(&buf, sr.log)
	}
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(out, "suite-output.txt"), buf.Bytes(), 0o644)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return serverResults{}, fmt.Errorf("the suite's server mode did not run: %w", err)
	}
	byName, err := readResultDirs(out, "server")
	if err != nil {
		byName = map[string]ScenarioResult{}
	}
	for name, r := range byName {
		r.Verdict = Passed
		if len(r.failures()) > 0 {
			r.Verdict = Failed
		}
		byName[name] = r
	}
	return serverResults{byName: byName, why: lastLines(buf.String(), 2)}, nil
}

// serverArgs are the suite's arguments for a server run against url into
// out: the revision's whole requirement set, or only scenario when it is
// set. A scenario comes from the requirement set, which names extension
// scenarios (tasks-*) that are off the spec's timeline; run alone, the
// suite skips those unless forced.
func serverArgs(url, out, revision, scenario string) []string {
	args := []string{"server", "--url", url, "-o", out}
	if scenario == "" {
		return append(args, "--requirements", revision)
	}
	return append(args, "--scenario", scenario, "--spec-version", revision, "--force")
}

// serverLegConfig is the operator configuration of the server leg: the
// proxy listens on 127.0.0.1:port, and each half's route is its loopback
// host on that port, to its everything-server, which needs no
// authorization.
func serverLegConfig(port int, halves []serverHalf, fixtures []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `listen: 127.0.0.1:%d

tls:
  cert_file: tls/mcp.example.com.crt
  key_file: tls/mcp.example.com.key

identity_provider:
  issuer: https://%s
  client_id: mcp-proxy
  client_secret: ${%s}

storage:
  type: memory

routes:
`, port, stack.IdPHost, stack.IdPClientSecretEnv)
	for i, h := range halves {
		fmt.Fprintf(&b, "  - from: https://%s\n    to: http://%s\n    mcp:\n      server: {}\n", net.JoinHostPort(h.routeHost, fmt.Sprint(port)), fixtures[i])
	}
	return b.String()
}

// signIn signs alice in at the proxy with an MCP client and returns the
// access token the proxy issued for endpoint.
func signIn(ctx context.Context, s *stack.Local, endpoint string) (string, error) {
	const name = "conformance-server-leg"
	c, err := actors.NewMCPClient(s.Transport(), "alice", name, s.ClientMetadataURL(name), s.ClientRedirectURL(name))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Connect(ctx, endpoint); err != nil {
		return "", err
	}
	defer c.Close()
	return c.Token(ctx)
}

// startFixture runs the everything-server on a free loopback port and
// waits until it accepts connections; stop ends it.
func startFixture(ctx context.Context, bin string, stateless bool, logFile string) (addr string, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return "", nil, err
	}
	log, err := os.Create(logFile)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-http", addr, fmt.Sprintf("-stateless=%v", stateless))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/mcp", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return addr, stop, nil
		}
		select {
		case err := <-done:
			log.Close()
			return "", nil, fmt.Errorf("%s -http %s exited before it served: %v (log: %s)", bin, addr, err, logFile)
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("%s -http %s did not serve within 20s (log: %s)", bin, addr, logFile)
		}
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
