package stack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// The container stack's environment, set before any testcontainers call:
// no Ryuk reaper, whose image would have to be pulled (this package
// removes what it creates itself, see CleanupContainers), and published
// ports reached on 127.0.0.1, never on an address that testcontainers
// would work out from the Docker host.
func init() {
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	// testcontainers narrates every container it creates; failures come
	// back as errors, which is all a scenario needs.
	tclog.SetDefault(tclog.NewNoopLogger())
}

// Labels on everything a run creates: containers, networks and images.
const (
	labelRun = "org.mcp-proxy.conformance.run"
	labelPID = "org.mcp-proxy.conformance.pid" // the process that created it
)

// imageRepo prefixes the run's image names: mcp-proxy-conformance/NAME:RUN.
const imageRepo = "mcp-proxy-conformance/"

// Binaries are the images of the container stack: cmd/NAME built with
// CGO_ENABLED=0 into a FROM scratch image by cmd/NAME/Dockerfile, the
// Dockerfile operators use.
var Binaries = []string{"mcp-proxy", "mockas", "mockmcp", "mockcimd"}

// ContainersInfo describes what a run of the container stack built.
type ContainersInfo struct {
	Run       string      // the run's id, in every image tag and container name
	Engine    string      // the Docker engine's version and address
	Images    []ImageInfo // one per binary
	BuildTime time.Duration
}

// ImageInfo is one built image.
type ImageInfo struct {
	Binary string
	Ref    string
	Size   int64 // bytes
}

func (i ContainersInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; images built in %.1fs:", i.Engine, i.BuildTime.Seconds())
	for n, im := range i.Images {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %.1f MB", im.Ref, float64(im.Size)/1e6)
	}
	return b.String()
}

// containerRun is what one process shares between its container stacks:
// the Docker client, the images and the run id.
type containerRun struct {
	id          string
	cli         *testcontainers.DockerClient
	images      map[string]string // binary → image reference
	info        ContainersInfo
	stopSignals func()
	closing     atomic.Bool // set on an interrupt: nothing new is created

	mu      sync.Mutex
	stacks  int
	dirs    map[string]bool // the stacks' working directories not yet removed
	spare   *spareStack     // the stack started ahead, if any
	pending sync.WaitGroup  // background removals
	errs    []error         // what background removals failed to do
}

// spareStack is a stack being started ahead of the scenario that will get
// it.
type spareStack struct {
	done chan struct{} // closed when s or err is set
	s    *Containers
	err  error
}

func (r *containerRun) takeSpare() *spareStack {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.spare
	r.spare = nil
	return sp
}

// warmSpare starts the next scenario's stack in the background.
func (r *containerRun) warmSpare() {
	sp := &spareStack{done: make(chan struct{})}
	r.mu.Lock()
	if r.spare != nil {
		r.mu.Unlock()
		return
	}
	r.spare = sp
	r.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sp.s, sp.err = startContainers(ctx, r)
		close(sp.done)
	}()
}

// discard closes a spare stack once it has started.
func (r *containerRun) discard(sp *spareStack) {
	r.background(func() error {
		<-sp.done
		if sp.s != nil {
			return sp.s.removeAll()
		}
		return nil
	})
}

// background runs f and records its error for CleanupContainers.
func (r *containerRun) background(f func() error) {
	r.pending.Add(1)
	go func() {
		defer r.pending.Done()
		if err := f(); err != nil {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		}
	}()
}

func (r *containerRun) labels() map[string]string {
	return map[string]string{labelRun: r.id, labelPID: strconv.Itoa(os.Getpid())}
}

func (r *containerRun) nextStack() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stacks++
	return r.stacks
}

// dir notes a stack's working directory (add) or its removal, so that an
// interrupt removes the directories too.
func (r *containerRun) dir(path string, add bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirs == nil {
		r.dirs = map[string]bool{}
	}
	if add {
		r.dirs[path] = true
	} else {
		delete(r.dirs, path)
	}
}

// removeDirs removes the working directories of the stacks still open.
func (r *containerRun) removeDirs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range r.dirs {
		os.RemoveAll(d)
	}
	r.dirs = nil
}

var (
	runMu  sync.Mutex
	theRun *containerRun
	runErr error
)

func prepareRun(ctx context.Context) (*containerRun, error) {
	runMu.Lock()
	defer runMu.Unlock()
	if theRun == nil && runErr == nil {
		theRun, runErr = newRun(ctx)
	}
	return theRun, runErr
}

// PrepareContainers builds the container stack's binaries and images, once
// per process, and says what it built. NewContainers calls it too; calling
// it first keeps the build out of the first scenario's time. From then on
// an interrupt (SIGINT, SIGTERM, SIGHUP) removes the run's containers,
// networks and images before the process exits; CleanupContainers does
// the same at the end of a run.
func PrepareContainers(ctx context.Context) (ContainersInfo, error) {
	r, err := prepareRun(ctx)
	if err != nil {
		return ContainersInfo{}, err
	}
	return r.info, nil
}

// CleanupContainers removes every container, network and image this
// process's run created. After a SIGKILL nothing can run; the next run
// removes what a dead process left (see removeStale), or by hand:
//
//	docker rm -f $(docker ps -aq --filter label=org.mcp-proxy.conformance.run)
//	docker network prune --filter label=org.mcp-proxy.conformance.run
//	docker image prune -a --filter label=org.mcp-proxy.conformance.run
func CleanupContainers(ctx context.Context) error {
	runMu.Lock()
	r := theRun
	theRun, runErr = nil, nil
	runMu.Unlock()
	if r == nil {
		return nil
	}
	if sp := r.takeSpare(); sp != nil {
		r.discard(sp)
	}
	r.pending.Wait()
	r.stopSignals()
	r.mu.Lock()
	errs := r.errs
	r.mu.Unlock()
	return errors.Join(append(errs, removeRun(ctx, r.cli, labelRun+"="+r.id))...)
}

// DockerEngine reports which Docker engine answers, or why none does.
func DockerEngine(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Docker %s (API %s) at %s", v.Version, v.APIVersion, cli.DaemonHost()), nil
}

func newRun(ctx context.Context) (_ *containerRun, err error) {
	started := time.Now()
	engine, err := DockerEngine(ctx)
	if err != nil {
		return nil, fmt.Errorf("stack: no Docker engine answers: %w", err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("stack: no Docker engine answers: %w", err)
	}
	r := &containerRun{id: randomHex()[:8], cli: cli, images: make(map[string]string)}
	r.info = ContainersInfo{Run: r.id, Engine: engine}
	removeStale(ctx, cli)
	r.stopSignals = r.removeOnSignal()
	defer func() {
		if err != nil {
			r.stopSignals()
			_ = removeRun(context.WithoutCancel(ctx), cli, labelRun+"="+r.id)
		}
	}()

	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin, err := os.MkdirTemp("", "mcp-proxy-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	args := []string{"build", "-trimpath", "-o", bin + string(os.PathSeparator)}
	for _, b := range Binaries {
		args = append(args, "./cmd/"+b)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return nil, err
	}
	defer provider.Close()
	for _, b := range Binaries {
		dockerfile, err := os.ReadFile(filepath.Join(root, "cmd", b, "Dockerfile"))
		if err != nil {
			return nil, err
		}
		binary, err := os.ReadFile(filepath.Join(bin, b))
		if err != nil {
			return nil, err
		}
		archive, err := tarFiles("", 0, []tarFile{
			{name: "Dockerfile", data: dockerfile, mode: 0o644},
			{name: b, data: binary, mode: 0o755},
		})
		if err != nil {
			return nil, err
		}
		req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
			ContextArchive: archive,
			Repo:           imageRepo + b,
			Tag:            r.id,
			KeepImage:      true, // removed by CleanupContainers, after every container
			BuildOptionsModifier: func(o *client.ImageBuildOptions) {
				o.Labels = r.labels()
			},
		}}
		ref, err := provider.BuildImage(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("stack: building the %s image from cmd/%s/Dockerfile: %w", b, b, err)
		}
		r.images[b] = ref
		im, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			return nil, err
		}
		r.info.Images = append(r.info.Images, ImageInfo{Binary: b, Ref: ref, Size: im.Size})
	}
	r.info.BuildTime = time.Since(started)
	return r, nil
}

// removeOnSignal removes the run's resources when the process is
// interrupted, then exits; the returned function stops watching.
func (r *containerRun) removeOnSignal() func() {
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case sig := <-sigs:
			r.closing.Store(true)
			fmt.Fprintf(os.Stderr, "\nstack: %v: removing run %s's containers, networks and images\n", sig, r.id)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := removeRun(ctx, r.cli, labelRun+"="+r.id); err != nil {
				fmt.Fprintln(os.Stderr, "stack:", err)
			}
			cancel()
			r.removeDirs()
			os.Exit(1)
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
		})
	}
}

// removeRun removes the containers, networks and images labelled with
// label (KEY=VALUE), in that order. Something may still be creating them
// (an interrupt arrives while a stack starts), so it goes over them again
// until a pass finds nothing left, for half a minute at most.
func removeRun(ctx context.Context, cli *testcontainers.DockerClient, label string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, err := removeOnce(ctx, cli, label)
		if n == 0 && err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("stack: removing %s: %w", label, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeOnce removes what it finds labelled with label and says how much
// that was.
func removeOnce(ctx context.Context, cli *testcontainers.DockerClient, label string) (int, error) {
	filter := client.Filters{}.Add("label", label)
	var errs []error
	n := 0
	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	errs = append(errs, err)
	for _, c := range ctrs.Items {
		n++
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	errs = append(errs, err)
	for _, nw := range nets.Items {
		n++
		if _, err := cli.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	ims, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: filter})
	errs = append(errs, err)
	for _, im := range ims.Items {
		n++
		if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// removeStale removes what earlier runs on this machine left behind when
// they were killed (SIGKILL, a crash): resources whose creating process is
// gone.
func removeStale(ctx context.Context, cli *testcontainers.DockerClient) {
	filter := client.Filters{}.Add("label", labelPID)
	pids := map[string]bool{}
	if ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter}); err == nil {
		for _, c := range ctrs.Items {
			pids[c.Labels[labelPID]] = true
		}
	}
	if nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter}); err == nil {
		for _, n := range nets.Items {
			pids[n.Labels[labelPID]] = true
		}
	}
	if ims, err := cli.ImageList(ctx, client.ImageListOptions{Filters: filter}); err == nil {
		for _, im := range ims.Items {
			pids[im.Labels[labelPID]] = true
		}
	}
	for pid := range pids {
		if n, err := strconv.Atoi(pid); err == nil && n > 0 && n != os.Getpid() && syscall.Kill(n, 0) == syscall.ESRCH {
			if err := removeRun(ctx, cli, labelPID+"="+pid); err == nil {
				fmt.Fprintf(os.Stderr, "stack: removed what an earlier run (process %s, gone) left behind\n", pid)
			}
		}
	}
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// moduleRoot is the directory of this module's go.mod, found upwards from
// the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(sc.Text()) == "module github.com/mcp-proxy/mcp-proxy" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("stack: the module root (go.mod of github.com/mcp-proxy/mcp-proxy) is not above the working directory")
		}
		dir = parent
	}
}

// tarFile is one file of an archive copied into a container.
type tarFile struct {
	name string
	data []byte
	mode int64
}

// tarFiles archives files under dir (a path in the container, "" for the
// archive's root), owned by uid:uid, with dir itself when it is not "".
func tarFiles(dir string, uid int, files []tarFile) (io.ReadSeeker, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir = strings.Trim(dir, "/")
	now := time.Now()
	if dir != "" {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, Uid: uid, Gid: uid, ModTime: now}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: path.Join(dir, f.name), Mode: f.mode, Size: int64(len(f.data)), Uid: uid, Gid: uid, ModTime: now}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return bytes.NewReader(buf.Bytes()), nil
}
