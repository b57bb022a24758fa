package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The containerd target runs a private containerd 1.6 (Debian's, with the
// runc v2 shim and Debian's runc) on a root, state dir and socket of its
// own, and starts each container with `ctr run --detach`, the way a script
// would. ctr is given the container's config.json with --config (the same
// spec as the runc and crun targets run, cgroup path included); with
// --config ctr takes only the container id, the spec's root.path being the
// shared rootfs. The shims' runc state goes to a private --runc-root too
// (by default it is /run/containerd/runc/<namespace>, shared with any other
// containerd).
//
// One thing is not private in containerd 1.6: each shim's socket is
// /run/containerd/s/<hash>. A shim removes its own at exit; the teardown
// removes the directories if the run created them and they are empty.
//
// Every ctr is a client of one daemon, and a burst of a thousand of them
// connects at once: ctr's default 10 s connect timeout then fails starts
// that are merely queued ("timed out waiting for server handshake"), so
// the target gives ctr --connect-timeout ctrConnectTimeout. Nothing is
// retried.

// containerdNamespace is the containerd namespace of the benchmark's
// containers.
const containerdNamespace = "troupe-bench"

// ctrConnectTimeout is how long a ctr waits for the daemon's handshake.
const ctrConnectTimeout = 2 * time.Minute

// containerdReadyTimeout bounds how long Setup waits for the daemon.
const containerdReadyTimeout = 30 * time.Second

// containerdStopTimeout is how long Teardown waits for the daemon to exit
// after SIGTERM before it kills it.
const containerdStopTimeout = 15 * time.Second

// containerdShim is the runtime v2 shim of io.containerd.runc.v2.
const containerdShim = "containerd-shim-runc-v2"

// containerdShared is the directory in which containerd 1.6 puts what it
// does not keep under its root or state: the shims' sockets (s/).
const containerdShared = "/run/containerd"

// containerdTarget is the containerd target.
type containerdTarget struct {
	cgroupParent string
	cgroupRoot   string
	// shared is containerdShared; sharedExisted says whether it was there
	// before Setup.
	shared        string
	sharedExisted bool

	containerd, ctr string // absolute paths
	dir             string // the work dir
	config          *cliConfig
	daemon          *exec.Cmd
	daemonDone      chan struct{}

	started idSet
	mu      sync.Mutex // serialises Setup and Teardown
}

// newContainerd returns the containerd target.
func newContainerd() *containerdTarget {
	return &containerdTarget{
		cgroupParent: cgroupParent("containerd"),
		cgroupRoot:   cgroupRoot,
		shared:       containerdShared,
	}
}

// Name returns "containerd".
func (c *containerdTarget) Name() string { return "containerd" }

// socket is the daemon's gRPC address.
func (c *containerdTarget) socket() string { return filepath.Join(c.dir, "containerd.sock") }

// bundles holds the containers' config.json files.
func (c *containerdTarget) bundles() string { return filepath.Join(c.dir, "bundles") }

// runcRoot is the shims' runc --root (runc adds the namespace).
func (c *containerdTarget) runcRoot() string { return filepath.Join(c.dir, "runc") }

// configFile is the daemon's configuration.
func (c *containerdTarget) configFile() string { return filepath.Join(c.dir, "config.toml") }

// logFile is the daemon's stdout and stderr.
func (c *containerdTarget) logFile() string { return filepath.Join(c.dir, "containerd.log") }

// daemonConfig is the daemon's config.toml: its own root, state and socket,
// no CRI plugin (a Kubernetes server the benchmark does not use, and the
// slowest plugin to load), no debug or metrics listener.
func daemonConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "containerd.sock"))
}

// Setup finds containerd, ctr, the runc shim and runc,
// writes a private configuration, starts the daemon and waits until `ctr
// version` answers.
func (c *containerdTarget) Setup(ctx context.Context, bundlePath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != "" {
		return errors.New("containerd: already set up")
	}
	var err error
	if c.containerd, err = requireCommand("containerd", "containerd"); err != nil {
		return err
	}
	if c.ctr, err = requireCommand("ctr", "containerd"); err != nil {
		return err
	}
	if _, err := requireCommand(containerdShim, "containerd"); err != nil {
		return err
	}
	if _, err := requireCommand("runc", "runc"); err != nil {
		return err
	}
	if c.config, err = loadCLIConfig(bundlePath, c.cgroupParent, ""); err != nil {
		return err
	}
	_, err = os.Stat(c.shared)
	c.sharedExisted = err == nil
	dir, err := os.MkdirTemp("", "troupe-bench-containerd-")
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	c.dir = dir
	if err := os.Mkdir(c.bundles(), 0o700); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	if err := os.WriteFile(c.configFile(), []byte(daemonConfig(dir)), 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	return c.startDaemon(ctx)
}

// startDaemon starts containerd, not tied to ctx (it lives until
// Teardown), and waits until it answers.
func (c *containerdTarget) startDaemon(ctx context.Context) error {
	log, err := os.OpenFile(c.logFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(c.containerd, "--config", c.configFile())
	cmd.Env = cliEnv()
	cmd.Stdout, cmd.Stderr = log, log
	// A process group of its own: a Ctrl-C at the terminal interrupts the
	// benchmark, which then tears down in order, not the daemon under it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return cliError(cmd.Args, err, nil)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.daemon, c.daemonDone = cmd, done

	ctx, cancel := context.WithTimeout(ctx, containerdReadyTimeout)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		if _, err := os.Stat(c.socket()); err == nil {
			if _, err := outputCLI(ctx, c.ctrArgv("version")...); err == nil {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("containerd: the daemon exited at start: %s", readTail(c.logFile(), maxStderr))
		case <-ctx.Done():
			return fmt.Errorf("containerd: the daemon does not answer: %w: %s", ctx.Err(), readTail(c.logFile(), maxStderr))
		case <-time.After(wait):
		}
	}
}

// ctrArgv is the command line of a ctr command on the private daemon.
func (c *containerdTarget) ctrArgv(args ...string) []string {
	argv := []string{c.ctr, "--address", c.socket(), "--namespace", containerdNamespace,
		"--connect-timeout", ctrConnectTimeout.String()}
	return append(argv, args...)
}

// runArgv is the ctr command that starts container id from config.
func (c *containerdTarget) runArgv(id, config string) []string {
	return c.ctrArgv("run", "--detach", "--null-io", "--runc-root", c.runcRoot(), "--config", config, id)
}

// Start writes the container's config.json and runs `ctr run --detach`,
// which returns once the task has started: the container's init runs the
// bundle's command.
func (c *containerdTarget) Start(ctx context.Context, id string) error {
	if err := checkCLIID(id); err != nil {
		return err
	}
	if c.config == nil {
		return fmt.Errorf("containerd: start container %q: not set up", id)
	}
	if !c.started.add(id) {
		return fmt.Errorf("containerd: start container %q: already started", id)
	}
	b, err := c.config.write(c.bundles(), id)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	// ctr's own output can be collected in memory: the container's stdio
	// is the shim's (null here), not ctr's.
	if err := runCLI(ctx, nil, c.runArgv(id, filepath.Join(b, "config.json"))...); err != nil {
		return fmt.Errorf("containerd: start container %q: %w", id, err)
	}
	return nil
}

// OverheadPids returns the daemon and every shim of this daemon (a shim's
// command line names the daemon's socket).
func (c *containerdTarget) OverheadPids(context.Context) ([]int, error) {
	if c.daemon == nil {
		return nil, errors.New("containerd: not running")
	}
	shims, err := shimPids("/proc", c.socket())
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	return append([]int{c.daemon.Process.Pid}, shims...), nil
}

// shimPids returns the pids, in procDir, of the runc v2 shims serving the
// daemon at address: their command line is
// `containerd-shim-runc-v2 -namespace NS -id ID -address ADDRESS`.
func shimPids(procDir, address string) ([]int, error) {
	var pids []int
	err := eachProcess(procDir, "cmdline", func(pid int, cmdline []byte) {
		if isShimOf(cmdline, address) {
			pids = append(pids, pid)
		}
	})
	slices.Sort(pids)
	return pids, err
}

// isShimOf reports whether a /proc/PID/cmdline is a runc v2 shim's serving
// the daemon at address.
func isShimOf(cmdline []byte, address string) bool {
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != containerdShim {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if (args[i] == "-address" || args[i] == "--address") && args[i+1] == address {
			return true
		}
	}
	return false
}

// Teardown kills, deletes the task of, and deletes every container of the
// namespace and every one Start was asked for, a few at a time; stops the
// daemon (SIGTERM, then SIGKILL if it hangs); kills any shim of it still
// alive; and removes the cgroups, the work dir and the shared directories
// the run created.
func (c *containerdTarget) Teardown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		return nil
	}
	var errs []error
	if c.daemon != nil {
		select {
		case <-c.daemonDone:
			// Without the daemon no ctr command can work; the leftover
			// shims are found below.
			errs = append(errs, fmt.Errorf("containerd: the daemon (pid %d) exited before the teardown: %s",
				c.daemon.Process.Pid, readTail(c.logFile(), maxStderr)))
		default:
			errs = append(errs, c.deleteContainers(ctx)...)
		}
		if err := c.stopDaemon(); err != nil {
			errs = append(errs, err)
		}
		// A shim outlives its daemon; one still alive now served a
		// container the deletes missed. It is ours (its command line names
		// our socket): kill it, so nothing stays.
		if shims, _ := shimPids("/proc", c.socket()); len(shims) > 0 {
			for _, pid := range shims {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			errs = append(errs, fmt.Errorf("containerd: killed %d shims left after the deletes: %v", len(shims), shims))
		}
	}
	if err := killCgroupLeftovers(c.cgroupRoot, c.cgroupParent); err != nil {
		errs = append(errs, fmt.Errorf("containerd: %w", err))
	}
	if err := removeCgroupTree(ctx, c.cgroupRoot, c.cgroupParent); err != nil {
		errs = append(errs, fmt.Errorf("containerd: %w", err))
	}
	if err := removeWorkDir(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("containerd: %w", err))
	}
	if !c.sharedExisted {
		// Only empty directories go; a containerd started meanwhile keeps
		// what it uses.
		for _, d := range []string{filepath.Join(c.shared, "s"), filepath.Join(c.shared, "runc"), c.shared} {
			_ = os.Remove(d)
		}
	}
	c.dir, c.config = "", nil
	return errors.Join(errs...)
}

// deleteContainers kills every container, then deletes each task and
// container.
func (c *containerdTarget) deleteContainers(ctx context.Context) []error {
	var errs []error
	out, err := outputCLI(ctx, c.ctrArgv("containers", "list", "--quiet")...)
	if err != nil {
		errs = append(errs, fmt.Errorf("containerd: list containers: %w", err))
	}
	ids := c.started.take(strings.Fields(out)...)
	// Kill them all first, so they die in parallel; the forced task
	// deletes then mostly find them dead.
	_ = forEachBounded(ids, cliTeardownConcurrency, func(id string) error {
		return runCLI(ctx, nil, c.ctrArgv("tasks", "kill", "--signal", "SIGKILL", id)...)
	})
	err = forEachBounded(ids, cliTeardownConcurrency, func(id string) error {
		if err := runCLI(ctx, nil, c.ctrArgv("tasks", "delete", "--force", id)...); err != nil && !isNotExist(err) {
			return fmt.Errorf("containerd: delete task %q: %w", id, err)
		}
		if err := runCLI(ctx, nil, c.ctrArgv("containers", "delete", id)...); err != nil && !isNotExist(err) {
			return fmt.Errorf("containerd: delete container %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, firstErrors(splitJoined(err), 5))
	}
	return errs
}

// stopDaemon sends the daemon SIGTERM and waits for it; if it has not exited
// after containerdStopTimeout, it kills it.
func (c *containerdTarget) stopDaemon() error {
	pid := c.daemon.Process.Pid
	defer func() { c.daemon, c.daemonDone = nil, nil }()
	select {
	case <-c.daemonDone:
		return nil // gone already; Teardown said so
	default:
	}
	if err := c.daemon.Process.Signal(syscall.SIGTERM); err != nil {
		select {
		case <-c.daemonDone:
			return nil
		default:
			return fmt.Errorf("containerd: stop the daemon (pid %d): %w", pid, err)
		}
	}
	select {
	case <-c.daemonDone:
		return nil
	case <-time.After(containerdStopTimeout):
	}
	_ = c.daemon.Process.Kill()
	<-c.daemonDone
	return fmt.Errorf("containerd: the daemon (pid %d) ignored SIGTERM for %v and was killed", pid, containerdStopTimeout)
}
