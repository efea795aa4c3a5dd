package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The peers users would pick instead of mcp-proxy, measured beside it
// when they are there: Caddy (built by make bench from the Go module
// proxy, pinned in the Makefile) and nginx (Debian's, installed by
// .ci/run). Each has a route to every upstream, puts the bench's bearer
// token in place of the client's, and streams event streams unbuffered.
const (
	Caddy = "caddy"
	Nginx = "nginx"

	CaddyHost        = "caddy.example.com"
	CaddyCannedHost  = "caddy-canned.example.com"
	CaddyStreamsHost = "caddy-streams.example.com"
	NginxHost        = "nginx.example.com"
	NginxCannedHost  = "nginx-canned.example.com"
	NginxStreamsHost = "nginx-streams.example.com"
)

// peerHosts are a peer's route hosts, to the SDK server, the canned
// answer and the streams upstream.
var peerHosts = map[string][3]string{
	Caddy: {CaddyHost, CaddyCannedHost, CaddyStreamsHost},
	Nginx: {NginxHost, NginxCannedHost, NginxStreamsHost},
}

var upstreamHosts = [3]string{SDKHost, CannedHost, StreamsHost}

// startPeers starts Caddy and nginx where they are installed, and
// returns the ones that run.
func (h *Harness) startPeers() ([]string, error) {
	var peers []string
	if _, err := os.Stat(filepath.Join(h.Bin, "caddy")); err == nil {
		if err := h.startCaddy(); err != nil {
			return nil, fmt.Errorf("bench: caddy: %w", err)
		}
		peers = append(peers, Caddy)
	}
	path, err := exec.LookPath("nginx")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/nginx") // Debian's, outside a user's PATH
	}
	if err == nil {
		if err := h.startNginx(path); err != nil {
			return nil, fmt.Errorf("bench: nginx: %w", err)
		}
		peers = append(peers, Nginx)
	}
	return peers, nil
}

// peerFiles issues the peer's certificate and picks its port.
func (h *Harness) peerFiles(peer string) (cert, key, addr string, err error) {
	names := peerHosts[peer]
	leaf, err := h.ca.Issue(names[:]...)
	if err != nil {
		return "", "", "", err
	}
	cert, key = h.path(peer+".crt"), h.path(peer+".key")
	if err := leaf.WriteFiles(cert, key); err != nil {
		return "", "", "", err
	}
	addr, err = freeAddr()
	return cert, key, addr, err
}

// register makes every route host of peer reach its process.
func (h *Harness) register(peer, addr string) error {
	names := peerHosts[peer]
	if err := waitListening(addr, h.procs[names[0]], h.done[h.procs[names[0]]]); err != nil {
		return err
	}
	for _, n := range names {
		h.addrs[n], h.procs[n] = addr, h.procs[names[0]]
	}
	return nil
}

func (h *Harness) startCaddy() error {
	cert, key, addr, err := h.peerFiles(Caddy)
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := strings.Cut(addr, ":")
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin %s\n\tauto_https off\n\tpersist_config off\n\tskip_install_trust\n}\n", admin)
	for i, name := range peerHosts[Caddy] {
		up := upstreamHosts[i]
		fmt.Fprintf(&b, `%s:%s {
	bind 127.0.0.1
	tls %s %s
	reverse_proxy https://%s {
		header_up Host %s
		header_up Authorization "Bearer %s"
		transport http {
			tls_server_name %s
			tls_trust_pool file %s
		}
	}
}
`, name, port, cert, key, h.addrs[up], up, h.DirectToken, up, h.path("ca.pem"))
	}
	if err := os.WriteFile(h.path("Caddyfile"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := h.exec(CaddyHost, "caddy", "run", "--config", h.path("Caddyfile"), "--adapter", "caddyfile"); err != nil {
		return err
	}
	h.debugAddrs[CaddyHost] = admin // Caddy's admin endpoint serves /debug/pprof and /debug/vars
	return h.register(Caddy, addr)
}

func (h *Harness) startNginx(path string) error {
	cert, key, addr, err := h.peerFiles(Nginx)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 19900; }
http {
	access_log off;
	client_body_temp_path %[1]s/nginx-body;
	proxy_temp_path %[1]s/nginx-proxy;
	fastcgi_temp_path %[1]s/nginx-fastcgi;
	uwsgi_temp_path %[1]s/nginx-uwsgi;
	scgi_temp_path %[1]s/nginx-scgi;
	ssl_certificate %[2]s;
	ssl_certificate_key %[3]s;
	http2_max_concurrent_streams 1000;
	proxy_http_version 1.1;
	proxy_buffering off;
	proxy_read_timeout 1h;
	proxy_ssl_server_name on;
	proxy_ssl_verify on;
	proxy_ssl_trusted_certificate %[4]s;
	proxy_ssl_session_reuse on;
`, h.Dir, cert, key, h.path("ca.pem"))
	for i, name := range peerHosts[Nginx] {
		up := upstreamHosts[i]
		fmt.Fprintf(&b, `	upstream %[1]s { server %[2]s; keepalive 64; }
	server {
		listen %[3]s ssl http2;
		server_name %[4]s;
		location / {
			proxy_pass https://%[1]s;
			proxy_set_header Host %[5]s;
			proxy_set_header Connection "";
			proxy_set_header Authorization "Bearer %[6]s";
			proxy_ssl_name %[5]s;
		}
	}
`, strings.ReplaceAll(up, ".", "_"), h.addrs[up], addr, name, up, h.DirectToken)
	}
	b.WriteString("}\n")
	if err := os.WriteFile(h.path("nginx.conf"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := h.exec(NginxHost, path, "-p", h.Dir, "-c", h.path("nginx.conf"), "-e", h.path("nginx-error.log")); err != nil {
		return err
	}
	return h.register(Nginx, addr)
}
