package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// DockerRunner is a stack that can carry out the docs' docker commands:
// the container stack. Scenarios that need it are tagged @containers.
type DockerRunner interface {
	// StartProxyWithDocker starts the stack's proxy the way script, a
	// shell command from the docs that calls `docker run`, says. See
	// Containers.StartProxyWithDocker.
	StartProxyWithDocker(ctx context.Context, script string) error
}

var _ DockerRunner = (*Containers)(nil)

// The image name the docs' build line gives the proxy's image.
const docsImage = "mcp-proxy"

// StartProxyWithDocker runs script verbatim with bash, in the proxy's
// working directory (where config.yaml is) with IDP_CLIENT_SECRET in the
// environment, as an operator would in theirs. The script's docker command
// is answered by the stack: bash hands over the arguments exactly as docker
// would receive them, and the stack carries out `docker run` with these
// substitutions, which keep the run on this machine and inside the stack:
//
//   - the image mcp-proxy is the image this run built from
//     cmd/mcp-proxy/Dockerfile;
//   - --name gets a name unique to the run;
//   - --publish keeps its container port and publishes it on 127.0.0.1 on
//     a port Docker picks, which the harness maps mcp.example.com to;
//   - the container joins the stack's network as mcp.example.com;
//   - the stack's trust flags (-ca-file, -allow-private-host) follow the
//     command, the CA file in the volume that mounts the working directory;
//   - a read-only volume of a host directory this machine lacks (such as
//     /etc/ssl/certs) mounts an empty directory instead.
//
// Options it does not know are an error, so the docs cannot show an option
// that no scenario carried out.
func (s *Containers) StartProxyWithDocker(ctx context.Context, script string) error {
	calls, err := s.shellDockerCalls(ctx, script)
	if err != nil {
		return err
	}
	if len(calls) != 1 || len(calls[0]) == 0 || calls[0][0] != "run" {
		return fmt.Errorf("stack: the script should call docker run once; it called docker %q", calls)
	}
	run, err := parseDockerRun(calls[0][1:], s.shellEnv())
	if err != nil {
		return err
	}
	if run.image != docsImage && run.image != docsImage+":latest" {
		return fmt.Errorf("stack: the script runs the image %q; the docs build the proxy's image as %q", run.image, docsImage)
	}
	if len(run.publish) != 1 {
		return fmt.Errorf("stack: the script publishes %d ports; the stack maps mcp.example.com onto exactly one", len(run.publish))
	}
	workdir, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		return err
	}
	c := s.proxyComponent(s.containerName("docs-proxy"), run.args)
	c.host, c.aliases, c.user, c.env, c.binds = ProxyHost, s.routeHosts(), run.user, run.env, nil
	c.port, c.readOnly = run.publish[0], run.readOnly
	caFile := ""
	for _, v := range run.volumes {
		src := v.src
		if real, err := filepath.EvalSymlinks(src); err == nil {
			src = real
		}
		switch {
		case src == workdir:
			caFile = strings.TrimSuffix(v.dst, "/") + "/stack-ca.pem"
		case !v.readOnly:
			return fmt.Errorf("stack: the script mounts %s writable; the stack mounts only the working directory so", v.src)
		default:
			if _, err := os.Stat(v.src); err != nil {
				empty := filepath.Join(s.dir, ".empty-"+strconv.Itoa(len(c.binds)))
				if err := os.MkdirAll(empty, 0o755); err != nil {
					return err
				}
				src = empty
			}
		}
		bind := src + ":" + v.dst
		if v.readOnly {
			bind += ":ro"
		}
		c.binds = append(c.binds, bind)
	}
	if caFile == "" {
		return fmt.Errorf("stack: the script mounts no volume from the directory it runs in (%s), where the configuration is", s.dir)
	}
	flags, err := s.trustFlags(caFile)
	if err != nil {
		return err
	}
	c.cmd = append(c.cmd, flags...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.retireProxy(ctx); err != nil {
		return err
	}
	return s.startProxy(ctx, c)
}

// shellDockerCalls runs script with bash in the working directory, with a
// shell function standing in for docker, and returns the arguments of each
// docker call.
func (s *Containers) shellDockerCalls(ctx context.Context, script string) ([][]string, error) {
	const sep = "\x1e"
	stub := `docker() { printf '%s\0' "$@"; printf '` + sep + `\0'; }` + "\n"
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", stub+script)
	cmd.Dir = s.dir
	for k, v := range s.shellEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("stack: bash -c %q: %v: %s", script, err, stderr.String())
	}
	var calls [][]string
	var cur []string
	for _, a := range strings.SplitAfter(stdout.String(), "\x00") {
		if a == "" {
			continue
		}
		a = strings.TrimSuffix(a, "\x00")
		if a == sep {
			calls = append(calls, cur)
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	return calls, nil
}

// shellEnv is the operator's environment the docs' commands run in.
func (s *Containers) shellEnv() map[string]string {
	return map[string]string{"PATH": os.Getenv("PATH"), "HOME": s.dir, IdPClientSecretEnv: s.idpSecret, UpstreamClientSecretEnv: UpstreamClientSecret}
}

// dockerRun is what the stack understood of a docker run command line.
type dockerRun struct {
	user     string
	env      map[string]string
	publish  []uint16 // container ports
	volumes  []volume
	readOnly bool
	image    string
	args     []string
}

type volume struct {
	src, dst string
	readOnly bool
}

// parseDockerRun reads docker run's options (the subset the docs use),
// the image and the command; env is the environment docker ran in.
func parseDockerRun(args []string, env map[string]string) (*dockerRun, error) {
	r := &dockerRun{env: map[string]string{}}
	for len(args) > 0 {
		a := args[0]
		if !strings.HasPrefix(a, "-") {
			break
		}
		args = args[1:]
		name, value, inline := strings.Cut(a, "=")
		switch name {
		case "-d", "--detach", "--read-only":
			if inline {
				return nil, fmt.Errorf("stack: docker run %s takes no value", name)
			}
			r.readOnly = r.readOnly || name == "--read-only"
			continue
		case "--name", "-u", "--user", "-p", "--publish", "-v", "--volume", "-e", "--env":
		default:
			return nil, fmt.Errorf("stack: the container stack does not carry out the docker run option %q: teach internal/stack/containers_docker.go before the docs use it", a)
		}
		if !inline {
			if len(args) == 0 {
				return nil, fmt.Errorf("stack: docker run %s needs a value", name)
			}
			value, args = args[0], args[1:]
		}
		switch name {
		case "--name": // replaced by a name unique to the run
		case "-u", "--user":
			r.user = value
		case "-e", "--env":
			if k, v, ok := strings.Cut(value, "="); ok {
				r.env[k] = v
			} else if v, ok := env[value]; ok {
				r.env[value] = v
			}
		case "-p", "--publish":
			parts := strings.Split(value, ":")
			p, err := strconv.ParseUint(strings.TrimSuffix(parts[len(parts)-1], "/tcp"), 10, 16)
			if err != nil || len(parts) < 2 || len(parts) > 3 {
				return nil, fmt.Errorf("stack: docker run --publish %q: want [IP:]HOSTPORT:PORT", value)
			}
			r.publish = append(r.publish, uint16(p))
		case "-v", "--volume":
			parts := strings.Split(value, ":")
			if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") || !filepath.IsAbs(parts[0]) {
				return nil, fmt.Errorf("stack: docker run --volume %q: want /HOST/PATH:/PATH[:ro]", value)
			}
			r.volumes = append(r.volumes, volume{src: parts[0], dst: parts[1], readOnly: len(parts) == 3 && parts[2] == "ro"})
		}
	}
	if len(args) == 0 {
		return nil, errors.New("stack: docker run names no image")
	}
	r.image, r.args = args[0], args[1:]
	return r, nil
}

// listenPortOf returns the port of a listen address, or def.
func listenPortOf(addr string, def uint16) uint16 {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 {
			return uint16(n)
		}
	}
	return def
}
