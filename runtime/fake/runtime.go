package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// DefaultFirstPid is the first host pid a Runtime hands out when
// Options.FirstPid is 0: high enough not to look like a daemon's own pids in
// logs, and never a pid the test binary could signal by mistake.
const DefaultFirstPid = 100000

// noLogDir is where LogPath points when Options.LogDir is empty: a path that
// names a plausible file but exists on no machine.
const noLogDir = "/nonexistent/troupe-fake/logs"

// Options configure a Runtime. The zero value is a runtime whose starts
// succeed at once; every field is optional.
type Options struct {
	// FirstPid is the first fake host pid; default DefaultFirstPid. Pids
	// increase by one per process and are never reused.
	FirstPid int
	// BadBundles are absolute bundle paths that Start rejects with
	// errclass.InvalidArgument, standing in for a missing or invalid
	// config.json (the fake never reads the disk).
	BadBundles []string
	// InitIgnores are signals that every init survives. A real pid
	// namespace init ignores, from the host, every signal it has no handler
	// for except SIGKILL; list SIGTERM here to model an init like
	// "sleep 3600". SIGKILL in the list has no effect: the kernel always
	// delivers it.
	InitIgnores []syscall.Signal
	// Unified models a cgroup v2 host: a fatal signal kills a frozen process
	// at once, and OOM reports end when the container stops (OnOOM still
	// accepts a callback, which is never called). The default models cgroup
	// v1 (and hybrid) hosts: a signal to a frozen process takes effect when
	// the container is resumed, and OOM reports end when the container is
	// deleted (OnOOM then fails with errclass.NotFound).
	Unified bool
	// LogDir, when set, is where Start creates an empty <id>.log that
	// Delete removes, as the real runtime does; a test may write to it.
	// When empty LogPath names a file that does not exist.
	LogDir string

	// Gate, when set, holds every Start after its id is reserved until it
	// receives a value from Gate (or Gate is closed, releasing all), or
	// until the Start's ctx ends. With InFlight and MaxInFlight it lets a
	// test see how many starts an admission limit lets through at once.
	Gate <-chan struct{}
	// StartDelay is how long each Start takes after the Gate, like a real
	// init's spawn; ctx cuts it short.
	StartDelay time.Duration
	// StartErr, when set, is called after the Gate and StartDelay; a non-nil
	// error fails the Start, wrapped with the container id, and nothing of
	// the container is left behind.
	StartErr func(ctx context.Context, id string, opts runtime.StartOptions) error
	// AfterStart, when set, is called with each new container just before
	// Start returns it, for example to make the init exit before the caller
	// sees the container, as a short-lived init can.
	AfterStart func(c *Container)
	// ExecErr, when set, is called by Exec once the container is found
	// running; a non-nil error fails the Exec, wrapped with context.
	ExecErr func(ctx context.Context, c *Container, spec runtime.ProcessSpec) error
	// AfterExec, when set, is called with each new exec'd process just
	// before Exec returns it.
	AfterExec func(c *Container, p *Process)
}

// Runtime is an in-memory runtime.Runtime. Its methods are safe for
// concurrent use.
type Runtime struct {
	opts    Options
	bad     map[string]bool
	ignores map[syscall.Signal]bool
	lastPid atomic.Int64 // the last pid handed out; atomic so Exec needs no runtime lock

	mu          sync.Mutex
	containers  map[string]*Container
	reserved    map[string]bool // ids whose Start is under way, invisible to Load and List
	startCalls  int
	inFlight    int
	maxInFlight int
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns an empty fake runtime configured by o.
func New(o Options) *Runtime {
	if o.FirstPid == 0 {
		o.FirstPid = DefaultFirstPid
	}
	r := &Runtime{
		opts:       o,
		bad:        make(map[string]bool, len(o.BadBundles)),
		ignores:    make(map[syscall.Signal]bool, len(o.InitIgnores)),
		containers: make(map[string]*Container),
		reserved:   make(map[string]bool),
	}
	// The slices are copied into maps so that a caller changing its
	// Options afterwards cannot race with the runtime.
	for _, b := range o.BadBundles {
		r.bad[filepath.Clean(b)] = true
	}
	for _, s := range o.InitIgnores {
		if s != syscall.SIGKILL {
			r.ignores[s] = true
		}
	}
	r.opts.BadBundles, r.opts.InitIgnores = nil, nil
	r.lastPid.Store(int64(o.FirstPid) - 1)
	return r
}

// Start implements runtime.Runtime. It checks, in the real runtime's order,
// the id, the bundle path, ctx and whether the id is free, then waits for
// Options.Gate and Options.StartDelay and asks Options.StartErr.
func (r *Runtime) Start(ctx context.Context, id string, opts runtime.StartOptions) (_ runtime.Container, retErr error) {
	r.enter()
	defer r.leave()
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	bundlePath, err := r.checkBundle(opts.BundlePath)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	if err := r.checkJoins(id, opts); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	if opts.Restore != nil {
		if err := checkImages(opts.Restore); err != nil {
			return nil, fmt.Errorf("restore container %q: %w", id, err)
		}
	}
	// The id is taken before the slow part, as libcontainer.Create takes
	// its state directory before running the init: a duplicate fails fast
	// instead of queueing behind the gate.
	if err := r.reserve(id); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			r.mu.Lock()
			delete(r.reserved, id)
			r.mu.Unlock()
		}
	}()
	if err := r.wait(ctx); err != nil {
		return nil, fmt.Errorf("start container %q: %w", id, err)
	}
	if f := r.opts.StartErr; f != nil {
		if err := f(ctx, id, opts); err != nil {
			return nil, fmt.Errorf("start container %q: %w", id, err)
		}
	}
	logPath := filepath.Join(noLogDir, id+".log")
	if r.opts.LogDir != "" {
		logPath = filepath.Join(r.opts.LogDir, id+".log")
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return nil, fmt.Errorf("start container %q: open log: %w", id, err)
		}
		f.Close()
	}
	c := newContainer(r, id, bundlePath, logPath)
	c.join = opts.Join
	r.mu.Lock()
	delete(r.reserved, id)
	r.containers[id] = c
	r.mu.Unlock()
	if f := r.opts.AfterStart; f != nil {
		f(c)
	}
	return c, nil
}

// Check implements runtime.Runtime: the id and the bundle path, as Start
// checks them.
func (r *Runtime) Check(ctx context.Context, id string, opts runtime.StartOptions) error {
	if err := runtime.ValidID("container id", id); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	_, err := r.checkBundle(opts.BundlePath)
	return err
}

// checkBundle accepts an absolute path that is not in Options.BadBundles,
// with the messages of package bundle, and returns it cleaned.
func (r *Runtime) checkBundle(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("bundle: bundlePath is required: %w", errclass.InvalidArgument)
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("bundle: bundlePath %q must be absolute: %w", path, errclass.InvalidArgument)
	}
	path = filepath.Clean(path)
	if r.bad[path] {
		return "", fmt.Errorf("bundle: %s: not a valid bundle (fake.Options.BadBundles): %w", path, errclass.InvalidArgument)
	}
	return path, nil
}

// reserve takes id for a Start under way, or reports that it is taken.
func (r *Runtime) reserve(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.containers[id] != nil || r.reserved[id] {
		return fmt.Errorf("container %q: %w", id, errclass.AlreadyExists)
	}
	r.reserved[id] = true
	return nil
}

// wait holds a Start at the Gate and for the StartDelay.
func (r *Runtime) wait(ctx context.Context) error {
	if r.opts.Gate != nil {
		select {
		case <-r.opts.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.opts.StartDelay > 0 {
		t := time.NewTimer(r.opts.StartDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *Runtime) enter() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startCalls++
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
}

func (r *Runtime) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
}

// Load implements runtime.Runtime. It returns the very object Start
// returned, so unlike the real runtime's re-adopted containers the init's
// exit status stays known.
func (r *Runtime) Load(ctx context.Context, id string) (runtime.Container, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	if c := r.Lookup(id); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("container %q: %w", id, errclass.NotFound)
}

// List implements runtime.Runtime: the ids of the containers started and
// not yet deleted, sorted, nil when there are none.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	var ids []string
	for id := range r.containers {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	sort.Strings(ids)
	return ids, nil
}

// Lookup returns the container id as its concrete type, for a test that
// started it through a layer above and now wants its test controls; nil if
// there is no such container.
func (r *Runtime) Lookup(id string) *Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.containers[id]
}

// StartCalls returns how many times Start has been called, successful or
// not.
func (r *Runtime) StartCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startCalls
}

// InFlight returns how many Start calls have been entered and not yet
// returned, including those held at the Gate.
func (r *Runtime) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// MaxInFlight returns the most Start calls that were ever in flight at
// once.
func (r *Runtime) MaxInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

// allocPid hands out the next fake host pid.
func (r *Runtime) allocPid() int { return int(r.lastPid.Add(1)) }

// fatal reports whether sig ends a process: the signals whose default
// action is to terminate and that a test process is assumed not to handle.
// SIGUSR1, SIGUSR2, SIGCONT, 0 and the rest are taken as handled or
// harmless.
func (r *Runtime) fatal(init bool, sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGKILL:
		return true
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
		return !init || !r.ignores[sig]
	}
	return false
}

// remove forgets c, if c is still the container of its id, and removes its
// log; an older, deleted object of a reused id must not remove the new one.
func (r *Runtime) remove(c *Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.containers[c.id] != c {
		return
	}
	delete(r.containers, c.id)
	if r.opts.LogDir != "" {
		_ = os.Remove(c.logPath) // already gone is as good as removed
	}
}

// checkJoins checks the namespaces a start joins as the real runtime does:
// each container exists, and the pid named is its init, which runs. Of a
// namespace file it checks only that it exists: the fake makes no
// namespaces, and joins none.
func (r *Runtime) checkJoins(id string, opts runtime.StartOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	for _, j := range opts.Join {
		if j.Path != "" {
			if _, err := os.Stat(j.Path); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("join %s %s: no such file: %w", j.Namespace, j.Where(), errclass.NotFound)
			} else if err != nil {
				return fmt.Errorf("join %s %s: %w", j.Namespace, j.Where(), err)
			}
			continue
		}
		if j.Container == id {
			return fmt.Errorf("join %s: a container cannot join its own namespaces: %w", j.Namespace, errclass.InvalidArgument)
		}
		r.mu.Lock()
		c, ok := r.containers[j.Container]
		r.mu.Unlock()
		if !ok {
			return fmt.Errorf("join %s of container %q: %w", j.Namespace, j.Container, errclass.NotFound)
		}
		select {
		case <-c.init.Done():
			return fmt.Errorf("join %s of container %q: it is not running: %w", j.Namespace, j.Container, errclass.FailedPrecondition)
		default:
		}
		if c.init.Pid() != j.Pid {
			return fmt.Errorf("join %s of container %q: its init is pid %d, not %d: %w",
				j.Namespace, j.Container, c.init.Pid(), j.Pid, errclass.FailedPrecondition)
		}
	}
	return nil
}
