package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
)

// teardownConcurrency is how many deletes the troupe target sends at once.
// A forced delete kills the init and waits for it; a few in flight keep
// both cores busy, a thousand would only queue in the daemon.
const teardownConcurrency = 16

// TroupeOptions say which daemon the troupe target drives.
type TroupeOptions struct {
	// Address is the daemon's API: unix:///path, tcp://host:port or
	// http://host:port, as for client.New.
	Address string
	// Token is the bearer token, if the daemon wants one.
	Token string
	// Client, if set, is used instead of a client made from Address and
	// Token; Address still names the daemon for density.
	Client *client.Client
	// DaemonPid is the daemon's pid, for density. Zero finds it from the
	// unix socket's peer credentials; over TCP density is then skipped.
	DaemonPid int
	// Image, when set, starts every container from this image in the
	// daemon's store (pulled at Setup if missing) instead of the bundle:
	// the target is then named "troupe-image".
	Image string
}

// Troupe is the troupe target: a running daemon driven through its REST
// API with the Go client, as any program would.
type Troupe struct {
	opts   TroupeOptions
	client *client.Client
	bundle string

	mu      sync.Mutex
	started []string // every id a Start was sent for
}

var _ Target = (*Troupe)(nil)

// NewTroupe returns the target of the daemon o names. It does not contact
// the daemon; Setup does.
func NewTroupe(o TroupeOptions) (*Troupe, error) {
	if o.Client != nil {
		return &Troupe{opts: o, client: o.Client}, nil
	}
	var opts []client.Option
	if o.Token != "" {
		opts = append(opts, client.WithToken(o.Token))
	}
	c, err := client.New(o.Address, opts...)
	if err != nil {
		return nil, err
	}
	return &Troupe{opts: o, client: c}, nil
}

// Name returns "troupe", or "troupe-image" for starts from an image.
func (t *Troupe) Name() string {
	if t.opts.Image != "" {
		return "troupe-image"
	}
	return "troupe"
}

// Setup checks that the daemon answers. The bundle must be on the daemon's
// machine, at an absolute path. Starting from an image, Setup makes sure
// the daemon has it with one start (and delete) that pulls it if missing,
// so that no start of the run pulls.
func (t *Troupe) Setup(ctx context.Context, bundle string) error {
	if err := t.client.Health(ctx); err != nil {
		return fmt.Errorf("daemon at %s: %w", t.opts.Address, err)
	}
	t.bundle = bundle
	if t.opts.Image != "" {
		id := "troupe-bench-image-check"
		_, err := t.client.Start(ctx, id, api.StartRequest{ImageStart: api.ImageStart{Image: t.opts.Image, Pull: api.PullMissing}})
		if err != nil {
			return fmt.Errorf("start from image %s: %w", t.opts.Image, err)
		}
		if err := t.client.Delete(ctx, id, true); err != nil {
			return fmt.Errorf("start from image %s: %w", t.opts.Image, err)
		}
	}
	return nil
}

// Start sends POST /containers/{id} and returns when the daemon answers
// 201 with the container running.
func (t *Troupe) Start(ctx context.Context, id string) error {
	_, err := t.start(ctx, id)
	return err
}

// start starts container id, remembering it for the teardown, and checks
// that it runs.
func (t *Troupe) start(ctx context.Context, id string) (api.Container, error) {
	t.mu.Lock()
	t.started = append(t.started, id)
	t.mu.Unlock()
	req := api.StartRequest{BundlePath: t.bundle}
	if t.opts.Image != "" {
		req = api.StartRequest{ImageStart: api.ImageStart{Image: t.opts.Image}}
	}
	info, err := t.client.Start(ctx, id, req)
	if err != nil {
		return info, err
	}
	if info.State.Status != api.Running {
		return info, fmt.Errorf("container %q is %s after its start", id, info.State.Status)
	}
	return info, nil
}

// quiesce closes the client's idle connections to the daemon.
func (t *Troupe) quiesce(context.Context) { _ = t.client.Close() }

// OverheadPids returns the daemon's pid and its engine's, when it runs its
// containers in one: troupe has no shims, so the daemon and its engine are
// the whole cost.
func (t *Troupe) OverheadPids(context.Context) ([]int, error) {
	pid := t.opts.DaemonPid
	if pid <= 0 {
		var err error
		if pid, err = socketPeerPid(t.opts.Address); err != nil {
			return nil, err
		}
	}
	engines, err := childrenNamed("/proc", pid, engineComm)
	if err != nil {
		return nil, err
	}
	return append([]int{pid}, engines...), nil
}

// engineComm is the name troupe's engine gives its threads.
const engineComm = "troupe-engine"

// childrenNamed returns the pids, in procDir, of parent's children whose
// name (comm) is name. The daemon's children are its engine and, when it
// runs them in-process, its containers: the name tells them apart.
func childrenNamed(procDir string, parent int, name string) ([]int, error) {
	var pids []int
	err := eachProcess(procDir, "stat", func(pid int, stat []byte) {
		if comm, ppid, ok := parseStat(stat); ok && ppid == parent && comm == name {
			pids = append(pids, pid)
		}
	})
	slices.Sort(pids)
	return pids, err
}

// parseStat returns the name and parent pid from a /proc/PID/stat line,
// "PID (COMM) STATE PPID ...", where COMM may hold spaces and parentheses.
func parseStat(stat []byte) (comm string, ppid int, ok bool) {
	open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || close < open {
		return "", 0, false
	}
	fields := strings.Fields(string(stat[close+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return "", 0, false
	}
	return string(stat[open+1 : close]), ppid, true
}

// socketPeerPid finds the daemon behind a unix socket address: the kernel
// records who listens on a unix socket, and SO_PEERCRED on a connection to
// it returns that process. (A socket handed over by socket activation would
// name the activator instead; troupe's daemon opens its own.)
func socketPeerPid(address string) (int, error) {
	path, ok := troupeSocketPath(address)
	if !ok {
		return 0, fmt.Errorf("the daemon's pid is unknown behind %s (not a unix socket): give it with --daemon-pid", address)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return 0, fmt.Errorf("find the daemon's pid: %w", err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("find the daemon's pid: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("find the daemon's pid: %w", err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("find the daemon's pid: SO_PEERCRED: %w", credErr)
	}
	return int(cred.Pid), nil
}

// unixPath returns the socket path of a unix address as client.New reads
// it: "unix:///path" or a bare "/path".
func troupeSocketPath(address string) (string, bool) {
	if strings.HasPrefix(address, "/") {
		return address, true
	}
	if p, ok := strings.CutPrefix(address, "unix://"); ok && p != "" {
		return p, true
	}
	return "", false
}

// Teardown force-deletes every container a Start was sent for, including
// failed ones (a start that timed out on the client may still have made
// its container), a few at a time. Containers already gone are fine.
func (t *Troupe) Teardown(ctx context.Context) error {
	defer t.client.Close()
	t.mu.Lock()
	ids := t.started
	t.started = nil
	t.mu.Unlock()

	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr error
		once     sync.Once
	)
	sem := make(chan struct{}, teardownConcurrency)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := t.client.Delete(ctx, id, true)
			if err != nil && !errors.Is(err, errclass.NotFound) {
				failed.Add(1)
				once.Do(func() { firstErr = fmt.Errorf("delete %s: %w", id, err) })
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d deletes failed, the first: %w", n, len(ids), firstErr)
	}
	return nil
}
