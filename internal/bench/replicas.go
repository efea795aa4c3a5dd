package bench

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Replicas are make load's proxies on the Redis store (internal/load's
// Redis phases): mcp-proxy processes with one configuration but their own
// ports and admin listeners, behind a loopback Balancer that ProxyHost
// resolves to from then on.
type Replicas struct {
	h        *Harness
	Balancer *Balancer
	addrs    []string // each replica's listener
	admins   []string // each replica's admin listener
}

// ReplicaKey is the key of replica i (from 0) among the harness's
// processes, and the name of its log file.
func ReplicaKey(i int) string { return fmt.Sprintf("replica-%d", i+1) }

// RedisStorage is the storage block of a replica's configuration: the
// Redis store (redis_url or redis_sentinel, indented as under storage:),
// with a key file that every replica shares.
func RedisStorage(block string) string {
	return "  type: redis\n  key_file: proxy-redis.key\n" + block
}

// StartReplicas stops the file-store proxy, if it runs, and starts n
// mcp-proxy replicas with storage (see RedisStorage) behind a balancer.
// They start one after another: the first creates the shared key file.
func (h *Harness) StartReplicas(n int, storage string) (*Replicas, error) {
	if c := h.procs[ProxyHost]; c != nil {
		if err := h.stop(c, 15*time.Second); err != nil {
			return nil, err
		}
		for _, host := range allProxyHosts() {
			delete(h.procs, host)
		}
	}
	r := &Replicas{h: h}
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		r.addrs, r.admins = append(r.addrs, addr), append(r.admins, admin)
		if err := r.start(i, storage); err != nil {
			return nil, err
		}
	}
	b, err := StartBalancer(r.addrs)
	if err != nil {
		return nil, err
	}
	r.Balancer = b
	h.inprocClose = append(h.inprocClose, b.Close)
	h.hosts.Set(ProxyHost, 443, netip.MustParseAddrPort(b.Addr()))
	return r, nil
}

// start starts replica i on its address with storage.
func (r *Replicas) start(i int, storage string) error {
	h := r.h
	file := ReplicaKey(i) + ".yaml"
	if err := os.WriteFile(h.path(file), []byte(replicaConfig(r.admins[i], storage)), 0o600); err != nil {
		return err
	}
	key := ReplicaKey(i)
	if err := h.exec(key, "mcp-proxy", h.proxyArgs(file, r.addrs[i])...); err != nil {
		return err
	}
	return waitListening(r.addrs[i], h.procs[key], h.done[h.procs[key]])
}

// Len is how many replicas there are.
func (r *Replicas) Len() int { return len(r.addrs) }

// Kill kills replica i (SIGKILL, as a crashed node) and returns once it
// has exited; the balancer then hands its connections to the others.
func (r *Replicas) Kill(i int) error {
	c := r.h.procs[ReplicaKey(i)]
	if c == nil {
		return fmt.Errorf("bench: no replica %d", i+1)
	}
	if err := killProcess(c); err != nil {
		return err
	}
	select {
	case <-r.h.done[c]:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bench: replica %d did not exit after SIGKILL", i+1)
	}
}

// Restart stops replica i (SIGTERM; it may be stopped already) and starts
// it again on its address, with storage.
func (r *Replicas) Restart(i int, storage string) error {
	if c := r.h.procs[ReplicaKey(i)]; c != nil {
		if err := r.h.stop(c, 15*time.Second); err != nil {
			return err
		}
	}
	return r.start(i, storage)
}

// Metrics scrapes replica i's admin listener.
func (r *Replicas) Metrics(i int) (map[string]*dto.MetricFamily, error) {
	return scrape("http://" + r.admins[i] + "/metrics")
}

// Ready asks replica i's /readyz, which reads the store: true when the
// replica reaches its Redis.
func (r *Replicas) Ready(i int) bool {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + r.admins[i] + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ReplicaLog is what replica i logged; "" when there was none.
func (h *Harness) ReplicaLog(i int) string {
	b, _ := os.ReadFile(h.path(ReplicaKey(i) + ".log"))
	return string(b)
}

// replicaConfig is make load's configuration for a replica: the load
// route, storage, and its own admin listener.
func replicaConfig(admin, storage string) string {
	block := strings.TrimSuffix(strings.TrimPrefix(storage, "  "), "\n")
	return proxyConfig(admin, block, [2]string{ProxyHost, SDKHost})
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: %s answered %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}
