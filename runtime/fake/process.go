package fake

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/runtime"
)

// Process is the fake's runtime.Process: an init or an exec'd process that
// "runs" until it is signalled, its container's init ends, or a test makes it
// exit. It is only ever created and ended under its container's lock.
type Process struct {
	exit *runtime.Exit // recorded by finish
	pid  int
	init bool
	spec runtime.ProcessSpec

	// pending is a fatal signal sent while the container was frozen; on a
	// cgroup v1 host a frozen process does not die until it is thawed.
	// Guarded by the container's lock.
	pending syscall.Signal
}

var _ runtime.Process = (*Process)(nil)

func newProcess(pid int, init bool, spec runtime.ProcessSpec) *Process {
	return &Process{exit: runtime.NewExit(), pid: pid, init: init, spec: spec}
}

// Pid implements runtime.Process; fake pids are never reused within a
// Runtime, so a stale pid can never name a newer process.
func (p *Process) Pid() int { return p.pid }

// Done implements runtime.Process.
func (p *Process) Done() <-chan struct{} { return p.exit.Done() }

// Wait implements runtime.Process.
func (p *Process) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	st, err := p.exit.Wait(ctx)
	if err != nil {
		return st, fmt.Errorf("wait for pid %d: %w", p.pid, err)
	}
	return st, nil
}

// OnExit implements runtime.Process. Callbacks are called on a goroutine
// of their own, after Done is closed and the container's lock is released,
// as the real runtime calls them on its own goroutine: a callback that
// looks at the container (Status) sees it as it is after the exit.
func (p *Process) OnExit(fn func(runtime.ExitStatus)) { p.exit.OnExit(fn) }

// Spec returns the spec the process was exec'd with, Cwd defaulted to "/"
// as the real runtime does. The init's spec is empty: the fake never reads
// the bundle. A test may write to spec.Stdout to play the process's output.
func (p *Process) Spec() runtime.ProcessSpec { return p.spec }

// IsInit reports whether p is its container's init.
func (p *Process) IsInit() bool { return p.init }

// finish records how the process ended and wakes every waiter. The caller
// holds the container's lock, which makes exactly one finish per process;
// the callbacks run after it, on a goroutine of their own.
func (p *Process) finish(st runtime.ExitStatus) {
	if fns := p.exit.Finish(st); len(fns) > 0 {
		go func() {
			for _, fn := range fns {
				fn(st)
			}
		}()
	}
}

// killedBy is the status of a process ended by sig, with the shells'
// 128+signal convention that runtime.ExitStatus documents.
func killedBy(sig syscall.Signal) runtime.ExitStatus {
	return runtime.ExitStatus{Code: 128 + int(sig), Signal: sig, At: time.Now()}
}

// exitedWith is the status of a process that exited by itself with code.
func exitedWith(code int) runtime.ExitStatus {
	return runtime.ExitStatus{Code: code, At: time.Now()}
}

// exited reports whether the process has ended.
func (p *Process) exited() bool { return p.exit.Exited() }
