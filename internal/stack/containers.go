package stack

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mcp-proxy/mcp-proxy/internal/clientmeta"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/mcp-proxy/mcp-proxy/internal/testca"
	"github.com/mcp-proxy/mcp-proxy/mockas"
)

// Containers is the container stack: every component runs from a FROM
// scratch image of its static binary (built by this process from the
// Dockerfiles in cmd/, see containers_run.go), on one Docker network of its
// own whose aliases are the documented names. Each component listens on 443
// inside the network (the proxy on its configuration's listen port) and
// publishes that port on 127.0.0.1 only; the harness
// reaches every name through those published ports with the same host map
// and guarded transport as the in-process stack, so RefusedDials works the
// same way for everything the harness dials.
//
// client.example.net is served by mockcimd, a small binary of its own that
// runs internal/clientmeta: the very handler the in-process stack serves,
// so both stacks publish the same documents.
//
// Freshness: a Containers is one scenario's stack, as in the in-process
// stack. The doubles keep grants, sessions and keys in memory and have no
// control call that forgets them all, so sharing them between scenarios
// would let one scenario's consent leak into the next. NewContainers starts
// the four doubles on a new network (in parallel: about two seconds on two
// cores, hidden by starting the next scenario's stack ahead), and Close
// removes them with the network. The images are built once per run.
//
// The proxy's working directory is a directory of this machine, as in the
// in-process stack: WriteConfig writes into it, and every proxy container
// (serve, validate, ...) mounts it at /config and runs as this process's
// user, as the docs' docker run does.
type Containers struct {
	run *containerRun
	n   int // the stack's number in the run, for container names
	shared
	network *testcontainers.DockerNetwork

	mu       sync.Mutex
	doubles  map[string]*component // by name: the doubles and the client host
	proxy    *component            // the proxy's container, if any
	proxyLog string                // what earlier proxy containers logged
	commands int                   // RunProxy containers so far
}

var _ Stack = (*Containers)(nil)

// component is one container of the stack.
type component struct {
	name     string   // container name
	host     string   // the stack name it serves (its network alias); "" for a command
	aliases  []string // more names it serves (the proxy's other route hosts)
	binary   string   // the image: mcp-proxy, mockas, mockmcp or mockcimd
	cmd      []string
	env      map[string]string
	files    []tarFile // copied under /config before the start
	binds    []string  // bind mounts, HOST:CONTAINER[:ro]
	user     string
	readOnly bool     // a read-only root file system
	port     uint16   // the container port to publish on 127.0.0.1, 0 for none
	more     []uint16 // more ports to publish (the proxy's admin listener)
	ctr      *testcontainers.DockerContainer
}

// containerDir is where a component finds its files.
const containerDir = "/config"

// imageUser owns the files copied into a double's container: the user the
// images run as (USER in the Dockerfiles).
const imageUser = 65532

// NewContainers returns a new stack whose doubles and client metadata host
// run in containers, building the images first if this run has not yet.
// The proxy starts with StartProxy once a scenario has given its
// configuration.
//
// Starting four containers takes a couple of seconds, so the run keeps one
// stack started ahead: NewContainers hands it out, never used, and starts
// the next one in the background.
func NewContainers(ctx context.Context) (*Containers, error) {
	run, err := prepareRun(ctx)
	if err != nil {
		return nil, err
	}
	var s *Containers
	if sp := run.takeSpare(); sp != nil {
		select {
		case <-sp.done:
			s, err = sp.s, sp.err
			if err != nil { // a spare that failed to start gets one more try
				s, err = startContainers(ctx, run)
			}
		case <-ctx.Done():
			run.discard(sp)
			return nil, ctx.Err()
		}
	} else {
		s, err = startContainers(ctx, run)
	}
	if err != nil {
		return nil, err
	}
	run.warmSpare()
	return s, nil
}

func startContainers(ctx context.Context, run *containerRun) (_ *Containers, err error) {
	ca, err := testca.New()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcp-proxy-stack-")
	if err != nil {
		return nil, err
	}
	run.dir(dir, true)
	s := &Containers{
		shared:  newShared(ca, dir),
		run:     run,
		n:       run.nextStack(),
		doubles: make(map[string]*component),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if run.closing.Load() {
		return nil, errors.New("stack: the run is being removed")
	}
	s.network, err = network.New(ctx, network.WithLabels(run.labels()))
	if err != nil {
		return nil, fmt.Errorf("stack: creating the network: %w", err)
	}

	caFile := tarFile{name: "stack-ca.pem", data: ca.CertPEM(), mode: 0o644}
	certFlags := []string{"-listen", ":443", "-tls-cert", containerDir + "/tls.crt", "-tls-key", containerDir + "/tls.key"}
	add := func(short, host, binary string, env map[string]string, args ...string) error {
		leaf, err := ca.Issue(host)
		if err != nil {
			return err
		}
		s.doubles[host] = &component{
			name:   s.containerName(short),
			host:   host,
			binary: binary,
			cmd:    append(args, certFlags...),
			env:    env,
			files: []tarFile{caFile,
				{name: "tls.crt", data: leaf.CertPEM, mode: 0o644},
				{name: "tls.key", data: leaf.KeyPEM, mode: 0o600}},
			port: 443,
		}
		return nil
	}
	// The doubles get the stack's settings (shared.go) as flags.
	asEnv := map[string]string{"MOCKAS_CONTROL_SECRET": s.secret}
	caFlag := []string{"-ca-file", containerDir + "/stack-ca.pem"}
	as, err := s.asSettings()
	if err != nil {
		return nil, err
	}
	for _, err := range []error{
		add("as", ASHost, "mockas", asEnv, mockasFlags(as, caFlag...)...),
		add("idp", IdPHost, "mockas", asEnv, mockasFlags(s.idpSettings(), caFlag...)...),
		add("mcp", UpstreamHost, "mockmcp", map[string]string{"MOCKMCP_CONTROL_SECRET": s.secret},
			append([]string{"-resource", UpstreamResource, "-as", "https://" + ASHost}, caFlag...)...),
		add("clients", ClientHost, "mockcimd", map[string]string{clientmeta.KeySeedEnv: s.keySeed}, "-host", ClientHost),
	} {
		if err != nil {
			return nil, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range s.doubles {
		g.Go(func() error { return s.launch(gctx, c) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// mockasFlags are cmd/mockas's flags for the settings of cfg that the
// stack uses, then extra.
func mockasFlags(cfg mockas.Config, extra ...string) []string {
	flags := []string{"-issuer", cfg.Issuer}
	for _, h := range cfg.TrustedHosts {
		flags = append(flags, "-trust-host", h)
	}
	for _, c := range cfg.Clients {
		spec := "id=" + c.ID
		if c.Secret != "" {
			spec += ",secret=" + c.Secret
		}
		if c.PublicKey != nil {
			if k, err := mockas.ClientKeyFlag(c.PublicKey); err == nil {
				spec += ",key=" + k
			}
		}
		for _, r := range c.RedirectURIs {
			spec += ",redirect=" + r
		}
		if c.Name != "" {
			spec += ",name=" + c.Name
		}
		flags = append(flags, "-client", spec)
	}
	for _, wi := range cfg.WorkloadIssuers {
		if k, err := mockas.ClientKeyFlag(wi.PublicKey); err == nil {
			flags = append(flags, "-workload-issuer", wi.Issuer+"="+k)
		}
	}
	for _, wi := range cfg.IDJAGIssuers {
		if k, err := mockas.ClientKeyFlag(wi.PublicKey); err == nil {
			flags = append(flags, "-id-jag-issuer", wi.Issuer+"="+k)
		}
	}
	if ij := cfg.IDJAG; ij != nil {
		if k, err := mockas.IDJAGKeyFlag(ij.Key); err == nil {
			flags = append(flags, "-id-jag-key", k)
		}
		for _, a := range ij.Access {
			flags = append(flags, "-id-jag-access", mockas.IDJAGAccessFlag(a))
		}
	}
	if cfg.DisableCIMD {
		flags = append(flags, "-disable-cimd")
	}
	return append(flags, extra...)
}

func (s *Containers) containerName(short string) string {
	return fmt.Sprintf("mcp-conformance-%s-%d-%s", s.run.id, s.n, short)
}

// launch creates, fills and starts c on the stack's network, then waits
// until it serves (a TLS handshake for its name succeeds through the
// published port) or exits.
func (s *Containers) launch(ctx context.Context, c *component) error {
	if err := s.create(ctx, c); err != nil {
		return err
	}
	if err := c.ctr.Start(ctx); err != nil {
		return fmt.Errorf("stack: starting %s: %w", c.name, err)
	}
	return s.await(ctx, c)
}

func (s *Containers) create(ctx context.Context, c *component) error {
	if s.run.closing.Load() {
		return errors.New("stack: the run is being removed")
	}
	req := testcontainers.ContainerRequest{
		Image:          s.run.images[c.binary],
		Name:           c.name,
		Cmd:            c.cmd,
		Env:            c.env,
		Labels:         s.run.labels(),
		Networks:       []string{s.network.Name},
		NetworkAliases: map[string][]string{},
		User:           c.user,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Binds = c.binds
			hc.ReadonlyRootfs = c.readOnly
			hc.PortBindings = mobynet.PortMap{}
			for _, p := range c.ports() {
				port, _ := mobynet.PortFrom(p, mobynet.TCP)
				hc.PortBindings[port] = []mobynet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
			}
		},
	}
	if c.host != "" {
		req.NetworkAliases[s.network.Name] = append([]string{c.host}, c.aliases...)
	}
	for _, p := range c.ports() {
		req.ExposedPorts = append(req.ExposedPorts, strconv.Itoa(int(p))+"/tcp")
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req})
	if ctr != nil {
		c.ctr, _ = ctr.(*testcontainers.DockerContainer)
	}
	if err != nil {
		return fmt.Errorf("stack: creating %s: %w", c.name, err)
	}
	if c.ctr == nil {
		return fmt.Errorf("stack: creating %s: not a Docker container", c.name)
	}
	if len(c.files) > 0 {
		archive, err := tarFiles(containerDir, imageUser, c.files)
		if err != nil {
			return err
		}
		if _, err := s.run.cli.CopyToContainer(ctx, c.ctr.GetContainerID(), client.CopyToContainerOptions{
			DestinationPath: "/", Content: archive,
		}); err != nil {
			return fmt.Errorf("stack: copying files into %s: %w", c.name, err)
		}
	}
	return nil
}

// ports are the container ports c publishes.
func (c *component) ports() []uint16 {
	if c.port == 0 {
		return nil
	}
	return append([]uint16{c.port}, c.more...)
}

// await maps c's name onto its published port and waits until a TLS
// handshake for the name succeeds there, or c exits.
func (s *Containers) await(ctx context.Context, c *component) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	mapped, err := c.ctr.MappedPort(ctx, strconv.Itoa(int(c.port))+"/tcp")
	if err != nil {
		return fmt.Errorf("stack: the published port of %s: %w", c.name, err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), mapped.Num())
	for _, h := range append([]string{c.host}, c.aliases...) {
		s.hosts.Set(h, 443, addr)
	}
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: time.Second},
		Config:    &tls.Config{ServerName: c.host, RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12},
	}
	for {
		conn, err := d.DialContext(ctx, "tcp", addr.String())
		if err == nil {
			conn.Close()
			return nil
		}
		st, serr := s.run.cli.ContainerInspect(ctx, c.ctr.GetContainerID(), client.ContainerInspectOptions{})
		if serr == nil && st.Container.State != nil && !st.Container.State.Running {
			return fmt.Errorf("stack: %s exited with %d:\n%s", c.name, st.Container.State.ExitCode, s.logs(context.WithoutCancel(ctx), c))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: %s did not serve %s on %s: %v (last: %v):\n%s", c.name, c.host, addr, ctx.Err(), err, s.logs(context.WithoutCancel(ctx), c))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logs returns everything c wrote to standard output and error.
func (s *Containers) logs(ctx context.Context, c *component) string {
	var b bytes.Buffer
	_ = s.readLogs(ctx, c, &b, &b)
	return b.String()
}

func (s *Containers) readLogs(ctx context.Context, c *component, stdout, stderr io.Writer) error {
	if c == nil || c.ctr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := s.run.cli.ContainerLogs(ctx, c.ctr.GetContainerID(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	return err
}

// remove removes c's container at once (SIGKILL), whatever its state.
func (s *Containers) remove(ctx context.Context, c *component) error {
	if c == nil || c.ctr == nil {
		return nil
	}
	_, err := s.run.cli.ContainerRemove(ctx, c.ctr.GetContainerID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("stack: removing %s: %w", c.name, err)
	}
	return nil
}

// Mode implements Stack.
func (s *Containers) Mode() string { return "containers" }

// RefusedDials implements Stack. It covers what the harness dials. Inside
// the network nothing records dials: Docker's DNS answers the stack's names
// and passes other names to the machine's resolver, as in a deployment, and
// the proxy's own SSRF guard is what refuses private addresses there. (An
// internal network would fence the containers in, but Docker publishes no
// port of a container that is only on an internal network.)
func (s *Containers) RefusedDials() []string { return s.hosts.RefusedDials() }

// WriteConfig implements Stack, exactly as the in-process stack does.
func (s *Containers) WriteConfig(config string) error {
	key, err := s.serviceKey()
	if err != nil {
		return err
	}
	return writeConfig(s.ca, s.dir, config, key, s.WorkloadToken)
}

// WriteFile implements Stack.
func (s *Containers) WriteFile(name string, data []byte) error { return writeBeside(s.dir, name, data) }

// trustFlags are the documented flags the stack adds to serve, as the
// in-process stack does; caFile is where the proxy finds the run's CA.
func (s *Containers) trustFlags(caFile string) ([]string, error) {
	if err := os.WriteFile(filepath.Join(s.dir, "stack-ca.pem"), s.ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	return []string{"-ca-file", caFile, "-allow-private-host", ASHost, "-allow-private-host", ClientHost}, nil
}

// proxyComponent is a container of the mcp-proxy image with the working
// directory mounted at /config (its WORKDIR), as this process's user.
func (s *Containers) proxyComponent(name string, args []string) *component {
	return &component{
		name:   name,
		binary: "mcp-proxy",
		cmd:    args,
		env:    map[string]string{IdPClientSecretEnv: s.idpSecret, UpstreamClientSecretEnv: UpstreamClientSecret},
		binds:  []string{s.dir + ":" + containerDir},
		user:   fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()),
	}
}

// StartProxy implements Stack: `mcp-proxy serve -config config.yaml` and
// the trust flags, in a new container that publishes the configuration's
// listen port.
func (s *Containers) StartProxy(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.retireProxy(ctx); err != nil {
		return err
	}
	flags, err := s.trustFlags("stack-ca.pem")
	if err != nil {
		return err
	}
	// The admin listener listens on all of the container's addresses, so
	// that Docker can publish it, as the in-process stack gives it a port
	// of its own.
	args := append([]string{"serve", "-config", "config.yaml", "-admin-listen", ":" + strconv.Itoa(adminPort)}, flags...)
	c := s.proxyComponent(s.containerName("proxy"), args)
	c.host, c.aliases, c.port, c.more = ProxyHost, s.routeHosts(), s.listenPort(), []uint16{adminPort}
	return s.startProxy(ctx, c)
}

// adminPort is the proxy's admin listener in its container (the default
// port of admin.listen).
const adminPort = 9464

var (
	_ AdminReader = (*Containers)(nil)
	_ Files       = (*Containers)(nil)
)

// AdminURL implements AdminReader: the proxy's admin listener through its
// published port; "" when the proxy does not run or has none.
func (s *Containers) AdminURL() string {
	s.mu.Lock()
	c := s.proxy
	s.mu.Unlock()
	if c == nil || len(c.more) == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.ctr.MappedPort(ctx, strconv.Itoa(adminPort)+"/tcp")
	if err != nil {
		return ""
	}
	return "http://127.0.0.1:" + strconv.Itoa(int(p.Num()))
}

// ProxyFile implements Files: the working directory is this machine's.
func (s *Containers) ProxyFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, name))
}

// routeHosts are the configuration's route hosts besides ProxyHost: the
// proxy's container answers for them too.
func (s *Containers) routeHosts() []string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "config.yaml"))
	var out []string
	for _, h := range routeHosts(readShape(string(b))) {
		if h != ProxyHost {
			out = append(out, h)
		}
	}
	return out
}

// retireProxy removes a stopped proxy container, keeping what it logged,
// so that a new one can start; a running one is an error. The caller holds
// s.mu.
func (s *Containers) retireProxy(ctx context.Context) error {
	if s.proxy == nil {
		return nil
	}
	st, err := s.run.cli.ContainerInspect(ctx, s.proxy.ctr.GetContainerID(), client.ContainerInspectOptions{})
	if err == nil && st.Container.State != nil && st.Container.State.Running {
		return errors.New("stack: the proxy is already running")
	}
	s.proxyLog += s.logs(ctx, s.proxy)
	if err := s.remove(ctx, s.proxy); err != nil {
		return err
	}
	s.proxy = nil
	return nil
}

// startProxy launches c as the stack's proxy. The caller holds s.mu.
func (s *Containers) startProxy(ctx context.Context, c *component) error {
	err := s.launch(ctx, c)
	if err == nil {
		s.proxy = c
		return nil
	}
	cleanup := context.WithoutCancel(ctx)
	var code int
	if c.ctr != nil {
		if st, ierr := s.run.cli.ContainerInspect(cleanup, c.ctr.GetContainerID(), client.ContainerInspectOptions{}); ierr == nil && st.Container.State != nil && !st.Container.State.Running {
			code = st.Container.State.ExitCode
		}
	}
	logs := s.logs(cleanup, c)
	s.proxyLog += logs
	_ = s.remove(cleanup, c)
	if code != 0 {
		return fmt.Errorf("mcp-proxy serve exited with %d:\n%s", code, logs)
	}
	return err
}

// listenPort is the port of the configuration's listen address: 443 unless
// it says otherwise.
func (s *Containers) listenPort() uint16 {
	b, err := os.ReadFile(filepath.Join(s.dir, "config.yaml"))
	if err != nil {
		return 443
	}
	return listenPortOf(readShape(string(b)).Listen, 443)
}

// RunProxy implements Stack: the command runs to its end in a container of
// the proxy's image, on the stack's network, with the working directory.
// The run's CA is the container's system roots (SSL_CERT_FILE), so a
// command that reaches the stack's names trusts them without a flag.
func (s *Containers) RunProxy(ctx context.Context, args ...string) (string, string, int) {
	fail := func(err error) (string, string, int) { return "", err.Error(), -1 }
	if err := os.WriteFile(filepath.Join(s.dir, "stack-ca.pem"), s.ca.CertPEM(), 0o644); err != nil {
		return fail(err)
	}
	// As in the in-process stack, commands that reach the network
	// (discover) get the stack's trust flags after the command name.
	if len(args) > 0 && args[0] == "discover" {
		flags, err := s.trustFlags("stack-ca.pem")
		if err != nil {
			return fail(err)
		}
		args = append(append([]string{args[0]}, flags...), args[1:]...)
	}
	s.mu.Lock()
	s.commands++
	c := s.proxyComponent(s.containerName("cmd"+strconv.Itoa(s.commands)), args)
	s.mu.Unlock()
	c.env["SSL_CERT_FILE"] = containerDir + "/stack-ca.pem"
	cleanup := context.WithoutCancel(ctx)
	defer s.remove(cleanup, c)
	if err := s.create(ctx, c); err != nil {
		return fail(err)
	}
	if err := c.ctr.Start(ctx); err != nil {
		return fail(err)
	}
	wait := s.run.cli.ContainerWait(ctx, c.ctr.GetContainerID(), client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int
	select {
	case r := <-wait.Result:
		code = int(r.StatusCode)
	case err := <-wait.Error:
		return fail(fmt.Errorf("stack: waiting for mcp-proxy %v: %w", args, err))
	}
	var stdout, stderr bytes.Buffer
	if err := s.readLogs(cleanup, c, &stdout, &stderr); err != nil {
		return fail(err)
	}
	return stdout.String(), stderr.String(), code
}

// ProxyLog implements Stack: everything the stack's proxy containers have
// logged. Docker copies a container's output to its log asynchronously, so
// it reads until two reads 100 ms apart agree (for two seconds at most).
func (s *Containers) ProxyLog() string {
	s.mu.Lock()
	prev, c := s.proxyLog, s.proxy
	s.mu.Unlock()
	if c == nil {
		return prev
	}
	ctx := context.Background()
	last := s.logs(ctx, c)
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		now := s.logs(ctx, c)
		if now == last {
			break
		}
		last = now
	}
	return prev + last
}

// component returns the container serving name.
func (s *Containers) component(name string) (*component, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == ProxyHost {
		if s.proxy == nil {
			return nil, errors.New("stack: the proxy has not been started")
		}
		return s.proxy, nil
	}
	c, ok := s.doubles[name]
	if !ok {
		return nil, fmt.Errorf("stack: %q: %w", name, ErrUnknownService)
	}
	return c, nil
}

// StopService implements Stack: docker stop (SIGTERM, then SIGKILL after
// five seconds).
func (s *Containers) StopService(ctx context.Context, name string) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	if name == ProxyHost {
		s.transport.CloseIdleConnections()
	}
	timeout := 5 * time.Second
	return c.ctr.Stop(ctx, &timeout)
}

// StartService implements Stack: docker start of the stopped container,
// which keeps its file system; the name is mapped anew, since its
// published port may have changed.
func (s *Containers) StartService(ctx context.Context, name string) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	if err := c.ctr.Start(ctx); err != nil {
		return fmt.Errorf("stack: starting %s: %w", c.name, err)
	}
	return s.await(ctx, c)
}

// PauseService implements Stack: docker pause (the cgroup freezer).
func (s *Containers) PauseService(ctx context.Context, name string) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	_, err = s.run.cli.ContainerPause(ctx, c.ctr.GetContainerID(), client.ContainerPauseOptions{})
	return err
}

// UnpauseService implements Stack: docker unpause.
func (s *Containers) UnpauseService(ctx context.Context, name string) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	_, err = s.run.cli.ContainerUnpause(ctx, c.ctr.GetContainerID(), client.ContainerUnpauseOptions{})
	return err
}

// RestartService implements Stack: docker stop, then docker start.
func (s *Containers) RestartService(ctx context.Context, name string) error {
	if err := s.StopService(ctx, name); err != nil {
		return err
	}
	return s.StartService(ctx, name)
}

// RestartProxy implements Stack.
func (s *Containers) RestartProxy(ctx context.Context) error {
	return s.RestartService(ctx, ProxyHost)
}

// Close implements Stack: the stack's containers and network are removed,
// and its working directory. The removal goes on in the background once the
// run has images (CleanupContainers waits for it and reports its errors),
// so the next scenario need not wait for it.
func (s *Containers) Close() error {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if s.run == nil {
		return s.removeAll()
	}
	s.run.background(s.removeAll)
	return nil
}

// removeAll removes the stack's containers, network and directory.
func (s *Containers) removeAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.mu.Lock()
	all := []*component{s.proxy}
	for _, c := range s.doubles {
		all = append(all, c)
	}
	s.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(func() {
			if err := s.remove(ctx, c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if s.network != nil {
		if err := s.network.Remove(ctx); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("stack: removing the network: %w", err))
		}
	}
	errs = append(errs, os.RemoveAll(s.dir))
	if s.run != nil {
		s.run.dir(s.dir, false)
	}
	return errors.Join(errs...)
}
