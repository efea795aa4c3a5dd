package bench

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"
	"github.com/mcp-proxy/mcp-proxy/internal/idp"
	"github.com/mcp-proxy/mcp-proxy/mockas"
	"github.com/mcp-proxy/mcp-proxy/proxy/netguard"
)

// LoadSetup is the set `make load` runs (internal/load): the doubles with
// the load test's users, the mock MCP server (mockmcp, which checks every
// token) as the one upstream, and mcp-proxy with one route to it and the
// file store, so that it can be restarted onto the same records.
type LoadSetup struct {
	// Users are the accounts of both mock authorization servers (the
	// remote one and the identity provider).
	Users []mockas.User
}

// startLoad is Start for [LoadSetup]: no bare hop, no canned upstream and
// no pre-authorized user; the load test authorizes its own.
func (h *Harness) startLoad() error {
	quiet := slog.New(slog.DiscardHandler)
	var err error
	h.as, err = mockas.New(mockas.Config{
		Issuer: "https://" + ASHost, Logger: quiet, DisableCIMD: true, Users: h.LoadSet.Users,
		Clients: []mockas.Client{{ID: proxyClient, Name: "mcp-proxy (load)",
			RedirectURIs: []string{"https://" + ProxyHost + "/.mcp-proxy/upstream/callback"}}},
	})
	if err != nil {
		return err
	}
	idpConfig := idp.Config(IdPHost, idpSecretText, ProxyHost)
	idpConfig.Logger, idpConfig.Users = quiet, h.LoadSet.Users
	h.idp, err = mockas.New(idpConfig)
	if err != nil {
		return err
	}
	for host, hd := range map[string]http.Handler{ASHost: h.as, IdPHost: h.idp, ClientHost: clientmeta.Handler(ClientHost, "")} {
		if err := h.serveInProcess(host, hd); err != nil {
			return err
		}
	}
	if err := h.spawn(SDKHost, "benchupstream", []string{SDKHost}, "-mode", "mockmcp",
		"-resource", "https://"+SDKHost+"/mcp", "-as", "https://"+ASHost, "-as-addr", h.addrs[ASHost],
		"-ca-file", h.path("ca.pem")); err != nil {
		return err
	}
	return h.startProxy()
}

// AS is the remote authorization server and IdP the identity provider
// (make load's set only).
func (h *Harness) AS() *mockas.Server  { return h.as }
func (h *Harness) IdP() *mockas.Server { return h.idp }

// NewTransport returns a transport of its own (its own connections) that
// reaches every host of the set and trusts its CA, as a separate program on
// this machine would.
func (h *Harness) NewTransport() *http.Transport {
	return netguard.NewTransport(h.hosts.DialContext, netguard.TransportOptions{RootCAs: h.ca.Pool()})
}

// Restart stops the process serving host (SIGTERM, then SIGKILL after
// grace) and starts it again with the same arguments on the same address:
// a new process, the same files.
func (h *Harness) Restart(host string, grace time.Duration) error {
	c := h.procs[host]
	args := h.args[host]
	if c == nil || len(args) == 0 {
		return fmt.Errorf("bench: no process serves %s", host)
	}
	if err := h.stop(c, grace); err != nil {
		return err
	}
	if err := h.exec(host, args[0], args[1:]...); err != nil {
		return err
	}
	for other, oc := range h.procs {
		if oc == c {
			h.procs[other] = h.procs[host]
		}
	}
	return waitListening(h.addrs[host], h.procs[host], h.done[h.procs[host]])
}

// stop ends c: SIGTERM, then SIGKILL if it has not exited after grace; it
// returns once the process has exited.
func (h *Harness) stop(c *exec.Cmd, grace time.Duration) error {
	done := h.done[c]
	if err := c.Process.Signal(syscall.SIGTERM); err != nil && err != os.ErrProcessDone {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	if err := killProcess(c); err != nil && err != os.ErrProcessDone {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bench: %s did not exit after SIGKILL", c.Path)
	}
}

// AdminMetrics scrapes mcp-proxy's admin listener: every sample, by metric
// family name.
func (h *Harness) AdminMetrics() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + h.adminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: the admin listener answered /metrics with %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// AdminAddr is mcp-proxy's admin listener.
func (h *Harness) AdminAddr() string { return h.adminAddr }
