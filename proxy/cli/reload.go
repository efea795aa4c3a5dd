package cli

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy"
	"github.com/mcp-proxy/mcp-proxy/proxy/config"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
	"github.com/mcp-proxy/mcp-proxy/proxy/metrics"
)

// DefaultWatchInterval is how often serve looks at the configuration file
// and the certificate it names for a change (-watch-interval).
const DefaultWatchInterval = 2 * time.Second

// reloader reloads the proxy's configuration on SIGHUP, and when the
// configuration file or the certificate and key it names change. It polls
// their contents, as Caddy's --watch does, rather than subscribe to file
// system events: a Kubernetes ConfigMap or cert-manager Secret is replaced
// by swapping a symbolic link, which file system events report unevenly.
type reloader struct {
	p        *proxy.Proxy
	env      Env
	cfgPath  string
	log      *slog.Logger
	interval time.Duration // 0: no watch, SIGHUP only
	seen     map[string][32]byte
}

func (rl *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	rl.seen = rl.stamps()
	var tick <-chan time.Time
	if rl.interval > 0 {
		t := time.NewTicker(rl.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			rl.reload("SIGHUP")
		case <-tick:
			if now := rl.stamps(); changed(rl.seen, now) {
				rl.seen = now
				rl.reload("a file changed")
			}
		}
	}
}

// stamps are the contents' hashes of the files a reload reads.
func (rl *reloader) stamps() map[string][32]byte {
	out := map[string][32]byte{}
	for _, f := range append([]string{rl.env.path(rl.cfgPath)}, rl.p.Files()...) {
		if b, err := os.ReadFile(f); err == nil {
			out[f] = sha256.Sum256(b)
		}
	}
	return out
}

func changed(before, after map[string][32]byte) bool {
	if len(before) != len(after) {
		return true
	}
	for f, h := range after {
		if before[f] != h {
			return true
		}
	}
	return false
}

// reload loads the file as validate does and swaps it in; a file with
// errors is refused with validate's errors, and the running configuration
// stays.
func (rl *reloader) reload(why string) {
	cfg, err := config.LoadFile(rl.env.Dir, rl.cfgPath, rl.env.LookupEnv)
	if err == nil {
		err = rl.p.Reload(cfg)
	}
	if err != nil {
		rl.p.Metrics().Reload(metrics.ReloadFailure)
		rl.log.Error("the configuration was not reloaded; the running one stays", event.ReloadFailed.Attr(),
			slog.String("trigger", why), slog.String("error", err.Error()))
		return
	}
	rl.p.Metrics().Reload(metrics.ReloadSuccess)
	rl.seen = rl.stamps() // the files the new configuration names
	routes := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, r.From+" -> "+r.To)
	}
	rl.log.Info("reloaded the configuration", event.ConfigReloaded.Attr(), slog.String("trigger", why), slog.Any("routes", routes))
}
