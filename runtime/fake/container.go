package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// libcontainer's own words for a refused transition, kept so that messages
// read like the real runtime's ("pause container "a": container not running").
var (
	errNotRunning = errors.New("container not running")
	errNotPaused  = errors.New("container not paused")
)

// The figures Stats reports: fixed, so tests can compare them exactly.
const (
	hostMemory    = 8 << 30 // MemoryLimit of a container without a limit
	memoryPerProc = 4 << 20 // resident memory of each live process
	cpuPerStats   = 1e6     // CPU nanoseconds each live process adds per Stats call
	ioReadBytes   = 1 << 20
	ioWriteBytes  = 64 << 10
)

// SignalCall is one call of Container.Signal that reached a live process.
type SignalCall struct {
	// Pid is the host pid the signal was sent to.
	Pid int
	// Signal is the signal sent; 0 is a probe.
	Signal syscall.Signal
}

// Container is the fake's runtime.Container. Its methods, the test
// controls included, are safe for concurrent use.
type Container struct {
	rt      *Runtime
	id      string
	bundle  string
	logPath string
	join    []runtime.Join
	init    *Process

	mu       sync.Mutex
	execs    map[int]*Process // live exec'd processes by pid
	frozen   bool             // paused; kept apart from the init's life as libcontainer's freezer state is
	deleted  bool
	oomFns   []func() // OnOOM callbacks; nil once oomDone
	oomDone  bool     // no more OOM reports: new callbacks are dropped
	oomKills uint64
	memory   int64 // limit in bytes, -1 for none
	shares   uint64
	pids     int64 // limit, -1 for none
	cpu      uint64
	peak     uint64
	signals  []SignalCall
}

var _ runtime.Container = (*Container)(nil)

// Joined implements runtime.Container.
func (c *Container) Joined() []runtime.Join { return c.join }

func newContainer(r *Runtime, id, bundle, logPath string) *Container {
	return &Container{
		rt: r, id: id, bundle: bundle, logPath: logPath,
		init:   newProcess(r.allocPid(), true, runtime.ProcessSpec{}),
		execs:  make(map[int]*Process),
		memory: -1, shares: 1024, pids: -1,
		cpu: 10 * cpuPerStats, // the init's own start-up
	}
}

// ID implements runtime.Container.
func (c *Container) ID() string { return c.id }

// BundlePath implements runtime.Container; it is the path Start was given,
// cleaned.
func (c *Container) BundlePath() string { return c.bundle }

// Init implements runtime.Container; the value is a *Process.
func (c *Container) Init() runtime.Process { return c.init }

// LogPath implements runtime.Container; see Options.LogDir.
func (c *Container) LogPath() string { return c.logPath }

// Exec implements runtime.Container. The new process runs until it is
// signalled, the init ends, or a test calls Exit.
func (c *Container) Exec(ctx context.Context, spec runtime.ProcessSpec) (runtime.Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.id, err)
	}
	if err := c.checkRunning(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", c.id, err)
	}
	if f := c.rt.opts.ExecErr; f != nil {
		if err := f(ctx, c, spec); err != nil {
			return nil, fmt.Errorf("exec %q in container %q: %w", spec.Args[0], c.id, err)
		}
	}
	spec.Args = slices.Clone(spec.Args)
	spec.Env = slices.Clone(spec.Env)
	spec.User.AdditionalGids = slices.Clone(spec.User.AdditionalGids)
	if spec.Cwd == "" {
		spec.Cwd = "/"
	}
	c.mu.Lock()
	// Checked again under the lock: the init may have ended, or the
	// container been paused, while the hook ran.
	if s := c.statusLocked(); s != runtime.Running {
		c.mu.Unlock()
		return nil, fmt.Errorf("exec in container %q: container is %s: %w", c.id, s, errclass.FailedPrecondition)
	}
	p := newProcess(c.rt.allocPid(), false, spec)
	c.execs[p.pid] = p
	c.mu.Unlock()
	if f := c.rt.opts.AfterExec; f != nil {
		f(c, p)
	}
	return p, nil
}

// checkRunning refuses an exec unless the container runs; the real
// runtime refuses a paused one because libcontainer's exec would block until
// the thaw while holding the lock Resume needs.
func (c *Container) checkRunning() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.statusLocked(); s != runtime.Running {
		return fmt.Errorf("exec in container %q: container is %s: %w", c.id, s, errclass.FailedPrecondition)
	}
	return nil
}

// Signal implements runtime.Container. SIGKILL always ends the process;
// SIGTERM, SIGINT, SIGHUP and SIGQUIT end it unless it is the init and
// Options.InitIgnores lists the signal; every other signal, and 0, is
// delivered without effect. In a paused container a fatal signal takes
// effect on Resume unless Options.Unified is set.
func (c *Container) Signal(pid int, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.liveLocked(pid)
	if err != nil {
		return err
	}
	c.signals = append(c.signals, SignalCall{Pid: pid, Signal: sig})
	c.deliverLocked(p, sig)
	return nil
}

// liveLocked returns the live process pid of the container, or an
// errclass.NotFound error worded as the real runtime's.
func (c *Container) liveLocked(pid int) (*Process, error) {
	if pid == c.init.pid {
		if c.init.exited() {
			return nil, fmt.Errorf("container %q: process %d has exited: %w", c.id, pid, errclass.NotFound)
		}
		return c.init, nil
	}
	if p := c.execs[pid]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("process %d in container %q: %w", pid, c.id, errclass.NotFound)
}

// deliverLocked gives sig to the live process p.
func (c *Container) deliverLocked(p *Process, sig syscall.Signal) {
	if !c.rt.fatal(p.init, sig) {
		return
	}
	if c.frozen && !c.rt.opts.Unified {
		// The cgroup v1 freezer holds the task in the refrigerator, where
		// not even SIGKILL reaches it; it dies on the thaw. SIGKILL wins
		// over a fatal signal already pending, as the kernel acts on it
		// first.
		if p.pending == 0 || sig == syscall.SIGKILL {
			p.pending = sig
		}
		return
	}
	c.endLocked(p, killedBy(sig))
}

// endLocked ends the live process p with st. When p is the init, the pid
// namespace ends with it: every exec'd process is SIGKILLed and its Done is
// closed before the init's, as the kernel reaps the namespace's other
// processes before the init's exit completes (zap_pid_ns_processes). So a
// caller that sees the init's Done closed finds every exec'd process done.
func (c *Container) endLocked(p *Process, st runtime.ExitStatus) {
	if !p.init {
		delete(c.execs, p.pid)
		p.finish(st)
		return
	}
	for _, pid := range c.execPidsLocked() {
		c.execs[pid].finish(killedBy(syscall.SIGKILL))
		delete(c.execs, pid)
	}
	p.finish(st)
	if c.rt.opts.Unified {
		// cgroup v2: the real runtime's OOM watch ends when the
		// cgroup has no process left.
		c.endOOMLocked()
	}
}

// execPidsLocked returns the pids of the live exec'd processes, in the
// order they started.
func (c *Container) execPidsLocked() []int {
	pids := make([]int, 0, len(c.execs))
	for pid := range c.execs {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// Processes implements runtime.Container: the init, then the exec'd
// processes in the order they started; nil once the init has ended.
func (c *Container) Processes() ([]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.init.exited() {
		return nil, nil
	}
	return append([]int{c.init.pid}, c.execPidsLocked()...), nil
}

// Status implements runtime.Container. It is never Created: Start returns
// a running container.
func (c *Container) Status() (runtime.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked(), nil
}

// statusLocked derives the status as the real runtime does: an ended init
// means stopped whatever the freezer says.
func (c *Container) statusLocked() runtime.Status {
	switch {
	case c.init.exited():
		return runtime.Stopped
	case c.frozen:
		return runtime.Paused
	}
	return runtime.Running
}

// Pause implements runtime.Container. As in libcontainer, pausing a paused
// or stopped container fails (errclass.FailedPrecondition) rather than doing
// nothing.
func (c *Container) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen || c.init.exited() {
		return errclass.With(errclass.FailedPrecondition, fmt.Errorf("pause container %q: %w", c.id, errNotRunning))
	}
	c.frozen = true
	return nil
}

// Resume implements runtime.Container. Resuming a container that is not
// frozen fails (errclass.FailedPrecondition), as in libcontainer. Fatal signals
// sent while it was frozen take effect now, the exec'd processes' first.
func (c *Container) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen {
		return errclass.With(errclass.FailedPrecondition, fmt.Errorf("resume container %q: %w", c.id, errNotPaused))
	}
	c.frozen = false
	for _, pid := range c.execPidsLocked() {
		if p := c.execs[pid]; p.pending != 0 {
			c.endLocked(p, killedBy(p.pending))
		}
	}
	if p := c.init; p.pending != 0 && !p.exited() {
		c.endLocked(p, killedBy(p.pending))
	}
	return nil
}

// Stats implements runtime.Container with deterministic figures: each live
// process holds 4 MiB and adds 1ms of CPU per call; block I/O is fixed.
// After Delete it fails with errclass.NotFound, the cgroup being gone.
func (c *Container) Stats() (*runtime.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return nil, fmt.Errorf("stats of container %q: cgroup has been removed: %w", c.id, errclass.NotFound)
	}
	live := uint64(len(c.execs))
	if !c.init.exited() {
		live++
	}
	c.cpu += live * cpuPerStats
	usage := live * memoryPerProc
	c.peak = max(c.peak, usage)
	s := &runtime.Stats{
		CPUUsageNanos:  c.cpu,
		MemoryUsage:    usage,
		MemoryLimit:    hostMemory,
		MemoryMaxUsage: c.peak,
		OOMKills:       c.oomKills,
		Pids:           live,
		IOReadBytes:    ioReadBytes,
		IOWriteBytes:   ioWriteBytes,
	}
	if c.memory > 0 {
		s.MemoryLimit = uint64(c.memory)
	}
	if c.pids > 0 {
		s.PidsLimit = uint64(c.pids)
	}
	return s, nil
}

// Update implements runtime.Container with the real runtime's checks: the
// limits must pass runtime.Resources.Validate (errclass.InvalidArgument), and a
// stopped container refuses (errclass.FailedPrecondition).
func (c *Container) Update(r runtime.Resources) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("update container %q: %w", c.id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// libcontainer's Set refuses only "stopped", and it calls a frozen
	// cgroup paused even when the init has ended.
	if c.init.exited() && !c.frozen || c.deleted {
		return errclass.With(errclass.FailedPrecondition, fmt.Errorf("update container %q: %w", c.id, errNotRunning))
	}
	if r.Memory != nil {
		c.memory = *r.Memory
	}
	if r.CPUShares != nil {
		c.shares = *r.CPUShares
	}
	if r.Pids != nil {
		c.pids = *r.Pids
	}
	return nil
}

// Resources returns the limits in force: every field set, -1 for no limit.
func (c *Container) Resources() runtime.Resources {
	c.mu.Lock()
	defer c.mu.Unlock()
	memory, shares, pids := c.memory, c.shares, c.pids
	return runtime.Resources{Memory: &memory, CPUShares: &shares, Pids: &pids}
}

// OnOOM implements runtime.Container. Callbacks are called by OOMKill, on
// the goroutine that calls it, outside the container's lock, in the order
// they were registered, and before the victim is killed: when the victim is
// the init, before its Done is closed and its OnExit callbacks run, as the
// real runtime orders them. After Delete OnOOM fails with errclass.NotFound; once
// the container has stopped with Options.Unified a callback is accepted and
// never called.
func (c *Container) OnOOM(fn func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return fmt.Errorf("oom notification of container %q: cgroup has been removed: %w", c.id, errclass.NotFound)
	}
	if !c.oomDone {
		c.oomFns = append(c.oomFns, fn)
	}
	return nil
}

// endOOMLocked ends the OOM reports, as the end of the real runtime's OOM
// watch does: the callbacks are dropped, never called again.
func (c *Container) endOOMLocked() {
	c.oomFns, c.oomDone = nil, true
}

// Delete implements runtime.Container. A running or paused container needs
// force (else errclass.FailedPrecondition); force SIGKILLs the init and thaws the
// container, which ends every process at once. Afterwards Load reports
// errclass.NotFound and the id may be started again. Deleting again succeeds and
// does nothing. The fake never blocks, so ctx is not consulted.
func (c *Container) Delete(ctx context.Context, force bool) error {
	c.mu.Lock()
	if s := c.statusLocked(); s != runtime.Stopped {
		if !force {
			c.mu.Unlock()
			return fmt.Errorf("delete container %q: container is %s: %w", c.id, s, errclass.FailedPrecondition)
		}
		c.frozen = false // the real runtime thaws after the kill so that it lands
		c.endLocked(c.init, killedBy(syscall.SIGKILL))
	}
	c.frozen = false
	already := c.deleted
	c.deleted = true
	c.endOOMLocked()
	c.mu.Unlock()
	if !already {
		c.rt.remove(c)
	}
	return nil
}

// Exit makes the live process pid (the init or an exec'd process) exit
// with code, 0 to 255. An init's exit ends every exec'd process with
// SIGKILL. It fails with errclass.NotFound for a pid that is not a live process of
// the container, errclass.InvalidArgument for a code out of range, and
// errclass.FailedPrecondition while the container is paused: a frozen process
// cannot run to its exit.
func (c *Container) Exit(pid, code int) error {
	if code < 0 || code > 255 {
		return fmt.Errorf("exit of process %d in container %q: code %d: must be 0 to 255: %w", pid, c.id, code, errclass.InvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.liveLocked(pid)
	if err != nil {
		return err
	}
	if c.frozen {
		return fmt.Errorf("exit of process %d in container %q: container is paused: %w", pid, c.id, errclass.FailedPrecondition)
	}
	c.endLocked(p, exitedWith(code))
	return nil
}

// OOMKill plays the kernel's OOM killer: it counts an OOM kill in Stats,
// calls every OnOOM callback (on this goroutine, with no lock held, in the
// order they were registered) and then, when pid is not 0, kills that
// process with SIGKILL (on Resume if the container is paused, unless
// Options.Unified) if it still lives. It fails with errclass.NotFound for a pid
// that is not live or a deleted container, and errclass.FailedPrecondition for pid
// 0 in a stopped container, which has no memory left to run out of.
func (c *Container) OOMKill(pid int) error {
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return fmt.Errorf("oom kill in container %q: cgroup has been removed: %w", c.id, errclass.NotFound)
	}
	var victim *Process
	if pid != 0 {
		p, err := c.liveLocked(pid)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		victim = p
	} else if c.init.exited() {
		c.mu.Unlock()
		return fmt.Errorf("oom kill in container %q: container is stopped: %w", c.id, errclass.FailedPrecondition)
	}
	c.oomKills++
	// Taken before the kill, which may end the reports (Unified): the
	// callbacks registered now hear of this kill whatever it ends.
	fns := c.oomFns
	c.mu.Unlock()
	// Before the kill, outside the lock: a callback may look at the
	// container, and has returned before the victim's exit is reported.
	for _, fn := range fns {
		fn()
	}
	if victim == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The victim may have died meanwhile, of another cause.
	if _, err := c.liveLocked(pid); err == nil {
		c.deliverLocked(victim, syscall.SIGKILL)
	}
	return nil
}

// Signals returns every Signal call that reached a live process, in
// order, for tests that check what a layer above sent (a SIGTERM, then a
// SIGKILL after the grace period).
func (c *Container) Signals() []SignalCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.signals)
}

// Process returns the process of the container whose pid is pid: the
// init (even after it ended) or a live exec'd process, else nil. It is for a
// test that exec'd through a layer above and now wants the process itself.
func (c *Container) Process(pid int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pid == c.init.pid {
		return c.init
	}
	return c.execs[pid]
}
