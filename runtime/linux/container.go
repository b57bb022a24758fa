package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// container is the libcontainer implementation of runtime.Container.
type container struct {
	id      string
	alias   string // the state dir's symlink naming a claimed prepared container
	lc      *libcontainer.Container
	rx      *reactor
	waiters *waiters
	meta    meta
	init    *process
	// criuTimeout is the runtime's CRIU deadline per GiB (criu.Timeout).
	criuTimeout time.Duration

	mu    sync.Mutex
	execs map[int]*process // exec'd processes by host pid, until reaped

	// oomMu guards oom, the container's OOM watch (oom.go): made on first
	// use, or ahead for a prepared container so that claiming it costs
	// less, and made again if it has ended. It is its own lock because
	// making a watch takes the reactor's, which Exec takes under mu.
	oomMu sync.Mutex
	oom   *oomWatch

	// deleted is set once Delete has destroyed the container: its cgroup
	// paths are gone from libcontainer's state then, so the cgroup cannot
	// even be looked for.
	deleted atomic.Bool
}

var _ runtime.Container = (*container)(nil)

// newContainer returns the container without its init, which the caller
// sets before handing it out: the init's exit drains the container's OOM
// kills (afterExit), so the container comes first.
func newContainer(lc *libcontainer.Container, rx *reactor, w *waiters, m meta) *container {
	return &container{id: lc.ID(), lc: lc, rx: rx, waiters: w, meta: m, execs: make(map[int]*process)}
}

// afterInitExit runs after the init is reaped and before its exit is
// reported: its last output must be in its log (pump, which may be nil)
// and an OOM kill of it reported, by the time anyone sees it stopped.
func (c *container) afterInitExit(pump *logPump) func() {
	return func() {
		pump.drained()
		c.drainOOM()
	}
}

// ID implements runtime.Container.
func (c *container) ID() string { return c.id }

// Joined implements runtime.Container, from the container's record on disk.
func (c *container) Joined() []runtime.Join { return c.meta.Join }

// BundlePath implements runtime.Container.
func (c *container) BundlePath() string { return c.meta.BundlePath }

// Init implements runtime.Container.
func (c *container) Init() runtime.Process { return c.init }

// LogPath implements runtime.Container.
func (c *container) LogPath() string { return c.meta.LogPath }

// Exec implements runtime.Container.
func (c *container) Exec(ctx context.Context, spec runtime.ProcessSpec) (runtime.Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.ID(), err)
	}
	// libcontainer's exec into a frozen container blocks until it thaws
	// while holding the container's lock, so Resume would deadlock.
	status, err := c.Status()
	if err != nil {
		return nil, err
	}
	if status != runtime.Running {
		return nil, fmt.Errorf("exec in container %q: container is %s: %w", c.ID(), status, errclass.FailedPrecondition)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.ID(), err)
	}
	env := spec.Env
	if len(env) == 0 {
		env = c.meta.Init.Env
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	lp := &libcontainer.Process{
		Args:             spec.Args,
		Env:              env,
		Cwd:              cwd,
		UID:              spec.User.UID,
		GID:              spec.User.GID,
		AdditionalGroups: spec.User.AdditionalGids,
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.ID(), err)
	}
	defer devNull.Close()
	lp.Stdin, lp.Stdout, lp.Stderr = orFile(spec.Stdin, devNull), orFile(spec.Stdout, devNull), orFile(spec.Stderr, devNull)
	if err := blocking(spec.Stdin, spec.Stdout, spec.Stderr); err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.ID(), err)
	}
	if spec.ConsoleSocket != nil {
		lp.ConsoleSocket, lp.ConsoleWidth, lp.ConsoleHeight = spec.ConsoleSocket, spec.ConsoleWidth, spec.ConsoleHeight
	}

	// The lock is held from the start to the registration so that Signal
	// and Processes never see a pid that is not yet tracked.
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.lc.Run(lp); err != nil {
		// A half-made exec may leave a zombie that keeps the init from
		// dying (strays.go).
		go c.waiters.reapStrays()
		err = classifyRun(classify(err, "exec %q in container %q", spec.Args[0], c.ID()), spec.Args[0], errclass.FailedPrecondition)
		// An init that exits during the exec takes the exec down with it
		// ("procReady not received", or its namespaces already gone): then
		// the container's state is the cause. A dying init may take a moment
		// to be reaped, hence the short wait, paid only on failure.
		if c.initEnded(exitGrace) {
			err = errclass.With(errclass.FailedPrecondition, err)
		}
		return nil, err
	}
	pid, err := lp.Pid()
	if err != nil {
		return nil, classify(err, "exec %q in container %q", spec.Args[0], c.ID())
	}
	spec.Env, spec.Cwd = env, cwd
	// The exec leaves the books on its reap, from the goroutine that reaps
	// it (which waits for the lock held here), not from one more goroutine
	// that would live as long as the process.
	p := waitChild(c.rx, c.waiters, pid, spec, lp.Signal, lp.Wait, func() {
		c.mu.Lock()
		delete(c.execs, pid)
		c.mu.Unlock()
		// An OOM kill of the process is reported before its exit, as an
		// init's is.
		c.drainOOM()
	})
	c.execs[pid] = p
	return p, nil
}

// exitGrace is how long a failed exec waits to learn whether the init was
// exiting.
const exitGrace = 250 * time.Millisecond

// initEnded reports whether the init has exited, waiting up to grace for
// it. The kernel is asked as well as the reaper: on a loaded machine the
// reap of an init that exited before the exec failed may come later than
// grace, while its pidfd tells at once.
func (c *container) initEnded(grace time.Duration) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(grace)
	for {
		if c.init.ended.Load() {
			return true
		}
		// Unreaped, the init's pid is still its own: no other process has
		// it. An init that is exiting may take a while to end: that of a
		// pid namespace waits for the namespace's last process, which a
		// failed exec may leave for strays.go to reap.
		if exited, err := groupExited(c.init.pid); err == nil && exited || allExiting(c.init.pid) {
			return true
		}
		select {
		case <-c.init.Done():
			return true
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
}

// orFile returns f, or def when f is nil.
func orFile(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

// Signal implements runtime.Container.
func (c *container) Signal(pid int, sig syscall.Signal) error {
	if pid == c.init.pid {
		return c.wrap(c.init.signal(sig))
	}
	c.mu.Lock()
	p, ok := c.execs[pid]
	c.mu.Unlock()
	if ok {
		return c.wrap(p.signal(sig))
	}
	// A process the runtime did not start (a child of the init or of an
	// exec'd process): it must be in the container's cgroup.
	pids, err := c.Processes()
	if err != nil {
		return err
	}
	if !slices.Contains(pids, pid) {
		return fmt.Errorf("process %d in container %q: %w", pid, c.ID(), errclass.NotFound)
	}
	if err := unix.Kill(pid, sig); err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("process %d in container %q: %w", pid, c.ID(), errclass.NotFound)
		}
		return fmt.Errorf("signal %v to process %d in container %q: %w", sig, pid, c.ID(), err)
	}
	return nil
}

// wrap adds the container to an error that names only a process.
func (c *container) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("container %q: %w", c.ID(), err)
	}
	return nil
}

// Processes implements runtime.Container.
func (c *container) Processes() ([]int, error) {
	if c.init.Exited() {
		return nil, nil
	}
	pids, err := c.lc.Processes()
	if err != nil {
		return nil, classify(err, "list processes of container %q", c.ID())
	}
	out := make([]int, 0, len(pids))
	out = append(out, c.init.pid)
	for _, p := range pids {
		if p != c.init.pid {
			out = append(out, p)
		}
	}
	return out, nil
}

// Status implements runtime.Container.
func (c *container) Status() (runtime.Status, error) {
	if c.init.Exited() {
		return runtime.Stopped, nil
	}
	// libcontainer calls an init stopped once its main thread is a zombie,
	// but the process lives on while another of its threads does: a
	// program whose main thread has exited, or an execve from a thread
	// other than the main one, until the exec takes over the pid (which on
	// a cgroup v1 host waits behind the cgroup moves of every other start:
	// over a second in a burst of 50 starts on two loaded cores, when our
	// own init still exec'd from another thread; init.go). When such an
	// exec ends between libcontainer's two looks at the init (one to choose
	// the state, one to allow the change), it fails with ErrRunning: the
	// init is running, as it says.
	s, err := c.lc.Status()
	if errors.Is(err, libcontainer.ErrRunning) {
		return runtime.Running, nil
	}
	if err != nil {
		return "", classify(err, "status of container %q", c.ID())
	}
	switch s {
	case libcontainer.Created:
		return runtime.Created, nil
	case libcontainer.Running:
		return runtime.Running, nil
	case libcontainer.Paused:
		return runtime.Paused, nil
	}
	if c.init.ended.Load() {
		return runtime.Stopped, nil
	}
	if exited, err := groupExited(c.init.pid); err == nil && !exited {
		return runtime.Running, nil
	}
	return runtime.Stopped, nil
}

// Pause implements runtime.Container.
func (c *container) Pause() error {
	return classify(c.lc.Pause(), "pause container %q", c.ID())
}

// Resume implements runtime.Container.
func (c *container) Resume() error {
	return classify(c.lc.Resume(), "resume container %q", c.ID())
}

// Stats implements runtime.Container.
func (c *container) Stats() (*runtime.Stats, error) {
	s, err := c.lc.Stats()
	if err != nil {
		return nil, classify(err, "stats of container %q", c.ID())
	}
	cg := s.CgroupStats
	out := &runtime.Stats{}
	if cg == nil {
		return out, nil
	}
	out.CPUUsageNanos = cg.CpuStats.CpuUsage.TotalUsage
	out.MemoryUsage = cg.MemoryStats.Usage.Usage
	out.MemoryLimit = cg.MemoryStats.Usage.Limit
	out.MemoryMaxUsage = cg.MemoryStats.Usage.MaxUsage
	out.OOMKills = cg.MemoryStats.Stats["oom_kill"]
	out.Pids = cg.PidsStats.Current
	out.PidsLimit = cg.PidsStats.Limit
	for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
		switch e.Op {
		case "Read", "read":
			out.IOReadBytes += e.Value
		case "Write", "write":
			out.IOWriteBytes += e.Value
		}
	}
	return out, nil
}

// Update implements runtime.Container.
func (c *container) Update(r runtime.Resources) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("update container %q: %w", c.ID(), err)
	}
	config := c.lc.Config()
	res := *config.Cgroups.Resources
	if r.Memory != nil {
		res.Memory = *r.Memory
	}
	if r.CPUShares != nil {
		res.CpuShares = *r.CPUShares
	}
	if r.Pids != nil {
		res.PidsLimit = r.Pids
	}
	cg := *config.Cgroups
	cg.Resources = &res
	config.Cgroups = &cg
	// A memory limit below what the container uses now is refused by the
	// kernel (EBUSY): the request is fine, the moment is not.
	return classifyRun(classify(c.lc.Set(config), "update container %q", c.ID()), "", errclass.FailedPrecondition)
}

// OnOOM implements runtime.Container. fn is called on the reactor's
// goroutine when the kernel wakes the watch, on a timer's shortly after
// (oom.go: cgroup v1 wakes the watch before it counts the kill), or on the
// goroutine that reaps a process of the container (its init or an exec'd
// one) when its exit finds a kill not yet reported. An OOM kill of an
// exec'd process is reported before its exit too.
func (c *container) OnOOM(fn func()) error {
	w, err := c.oomWatch()
	if err != nil {
		return err
	}
	w.onOOM(fn)
	return nil
}

// oomWatch returns the container's OOM watch, making one if there is none
// or the last one has ended (its cgroup went away, or on cgroup v2 its
// processes did): a new one then fails for a deleted container, and is
// ended from the start for a stopped one on cgroup v2.
func (c *container) oomWatch() (*oomWatch, error) {
	c.oomMu.Lock()
	defer c.oomMu.Unlock()
	if c.oom != nil && !c.oom.isEnded() {
		return c.oom, nil
	}
	w, err := c.newOOMWatch()
	if err != nil {
		return nil, err
	}
	c.oom = w
	return w, nil
}

func (c *container) newOOMWatch() (*oomWatch, error) {
	if c.deleted.Load() {
		return nil, fmt.Errorf("oom notification of container %q: cgroup has been removed: %w", c.ID(), errclass.NotFound)
	}
	st, err := c.lc.State()
	if err != nil {
		return nil, classify(err, "oom notification of container %q", c.ID())
	}
	dir := st.CgroupPaths["memory"]
	var w *oomWatch
	if cgroups.IsCgroup2UnifiedMode() {
		w, err = watchOOMv2(c.rx, dir)
	} else {
		w, err = watchOOMv1(c.rx, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("oom notification of container %q: %w", c.ID(), err)
	}
	return w, nil
}

// drainOOM reports the OOM kills counted and not yet reported; a process's
// reap calls it before the exit is reported, since the kernel's wake-up of
// the watch may still be on its way (cgroup v1 wakes it before it counts).
func (c *container) drainOOM() {
	c.oomMu.Lock()
	w := c.oom
	c.oomMu.Unlock()
	if w != nil {
		w.report()
	}
}

// Delete implements runtime.Container.
func (c *container) Delete(ctx context.Context, force bool) error {
	status, err := c.Status()
	if err != nil {
		return err
	}
	// A created container (a prepared one, warm.go) has an init waiting.
	if status != runtime.Stopped {
		if !force {
			return fmt.Errorf("delete container %q: container is %s: %w", c.ID(), status, errclass.FailedPrecondition)
		}
		if err := c.kill(ctx); err != nil {
			return err
		}
	}
	// Every process must be reaped before the cgroup can go.
	if err := c.waitAll(ctx); err != nil {
		return fmt.Errorf("delete container %q: %w", c.ID(), err)
	}
	if err := c.lc.Destroy(); err != nil {
		return classify(err, "delete container %q", c.ID())
	}
	c.deleted.Store(true)
	if c.alias != "" {
		if err := os.Remove(c.alias); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("delete container %q: %w", c.ID(), err)
		}
	}
	if err := containerlog.Remove(c.meta.LogPath); err != nil {
		return fmt.Errorf("delete container %q: remove log: %w", c.ID(), err)
	}
	return nil
}

// kill SIGKILLs the init, thawing the container first if it is frozen (a
// frozen process does not die until thawed), and waits for the init's exit.
func (c *container) kill(ctx context.Context) error {
	if err := c.init.signal(unix.SIGKILL); err != nil && !c.init.Exited() {
		return fmt.Errorf("kill container %q: %w", c.ID(), err)
	}
	if s, _ := c.lc.Status(); s == libcontainer.Paused {
		if err := c.lc.Resume(); err != nil {
			return classify(err, "kill container %q", c.ID())
		}
	}
	if err := c.waitInit(ctx); err != nil {
		return fmt.Errorf("kill container %q: %w", c.ID(), err)
	}
	return nil
}

// waitInit waits for the init's exit; while it is slow to come, stray
// zombies that keep a dying init alive are reaped (strays.go).
func (c *container) waitInit(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.init.Done():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("wait for pid %d: %w", c.init.pid, ctx.Err())
		case <-tick.C:
			c.waiters.reapStrays()
		}
	}
}

// waitAll waits until the init and every exec'd process are reaped; the
// kernel kills the rest of a pid namespace when its init dies.
func (c *container) waitAll(ctx context.Context) error {
	if err := c.waitInit(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	pending := make([]*process, 0, len(c.execs))
	for _, p := range c.execs {
		pending = append(pending, p)
	}
	c.mu.Unlock()
	for _, p := range pending {
		if _, err := p.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// blocking puts the files a process is given into blocking mode. A pipe
// end made by os.Pipe, or received over a socket from such a caller, is
// non-blocking; the process would then get EAGAIN from a full pipe, which
// programs take for an I/O error.
func blocking(files ...*os.File) error {
	for _, f := range files {
		if f == nil {
			continue
		}
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("stdio: %w", serr)
		}
	}
	return nil
}
