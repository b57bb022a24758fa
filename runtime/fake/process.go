package fake

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/runtime"
)

// Process is the fake's runtime.Process: an init or an exec'd process that
// "runs" until it is signalled, its container's init ends, or a test makes it
// exit. It is only ever created and ended under its container's lock.
type Process struct {
	pid  int
	init bool
	spec runtime.ProcessSpec
	done chan struct{}

	// status is written once, before done is closed, so a reader that has
	// seen done closed reads it without a lock (the close is the barrier).
	status runtime.ExitStatus
	// pending is a fatal signal sent while the container was frozen; on a
	// cgroup v1 host a frozen process does not die until it is thawed.
	// Guarded by the container's lock.
	pending syscall.Signal

	// onExit holds the OnExit callbacks until finish calls them; mu
	// guards it and finished, apart from the container's lock, which a
	// callback must not be called under.
	mu       sync.Mutex
	finished bool
	onExit   []func(runtime.ExitStatus)
}

var _ runtime.Process = (*Process)(nil)

func newProcess(pid int, init bool, spec runtime.ProcessSpec) *Process {
	return &Process{pid: pid, init: init, spec: spec, done: make(chan struct{})}
}

// Pid implements runtime.Process; fake pids are never reused within a
// Runtime, so a stale pid can never name a newer process.
func (p *Process) Pid() int { return p.pid }

// Done implements runtime.Process.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait implements runtime.Process.
func (p *Process) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	// Checked first so that a process that has exited reports its status
	// even to a caller whose ctx is already done, instead of a coin toss
	// between the two ready cases of the select.
	if p.exited() {
		return p.status, nil
	}
	select {
	case <-p.done:
		return p.status, nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, fmt.Errorf("wait for pid %d: %w", p.pid, ctx.Err())
	}
}

// OnExit implements runtime.Process. Callbacks are called on a goroutine
// of their own, after Done is closed and the container's lock is released,
// as the real runtime calls them on its own goroutine: a callback that
// looks at the container (Status) sees it as it is after the exit.
func (p *Process) OnExit(fn func(runtime.ExitStatus)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		go fn(p.status)
		return
	}
	p.onExit = append(p.onExit, fn)
}

// Spec returns the spec the process was exec'd with, Cwd defaulted to "/"
// as the real runtime does. The init's spec is empty: the fake never reads
// the bundle. A test may write to spec.Stdout to play the process's output.
func (p *Process) Spec() runtime.ProcessSpec { return p.spec }

// IsInit reports whether p is its container's init.
func (p *Process) IsInit() bool { return p.init }

// exited reports whether the process has ended.
func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// finish records how the process ended and wakes every waiter. The caller
// holds the container's lock, which makes exactly one finish per process.
func (p *Process) finish(st runtime.ExitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = st
	p.finished = true
	close(p.done)
	if fns := p.onExit; len(fns) > 0 {
		p.onExit = nil
		// Not under the container's lock, which the caller holds.
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
