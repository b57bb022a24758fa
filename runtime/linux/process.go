package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// process is one process of a container.
type process struct {
	*runtime.Exit // Done, Wait's status, OnExit; finish records it
	pid           int
	spec          runtime.ProcessSpec
	send          func(os.Signal) error // through a pidfd, so a recycled pid is never hit
	// ended is set the moment the exit is seen, before the log drains and
	// Done closes: from then on pid may be another process's.
	ended atomic.Bool
}

func newProcess(pid int, spec runtime.ProcessSpec, send func(os.Signal) error) *process {
	return &process{Exit: runtime.NewExit(), pid: pid, spec: spec, send: send}
}

var _ runtime.Process = (*process)(nil)

// Pid implements runtime.Process.
func (p *process) Pid() int { return p.pid }

// Spec implements runtime.Process.
func (p *process) Spec() runtime.ProcessSpec { return p.spec }

// Wait implements runtime.Process.
func (p *process) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	st, err := p.Exit.Wait(ctx)
	if err != nil {
		return st, fmt.Errorf("wait for pid %d: %w", p.pid, err)
	}
	return st, nil
}

// finish records the process's exit status, closes Done and calls the
// OnExit callbacks registered in time, on the goroutine that saw the exit
// (the reactor's, or the one that reaped the process); it is called once
// per process.
func (p *process) finish(st runtime.ExitStatus) {
	for _, fn := range p.Exit.Finish(st) {
		fn(st)
	}
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool { return p.Exited() }

// signal sends sig to the process, or reports that it is gone.
func (p *process) signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("process %d has exited: %w", p.pid, errclass.NotFound)
	}
	err := p.send(sig)
	if errors.Is(err, os.ErrProcessDone) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("process %d has exited: %w", p.pid, errclass.NotFound)
	}
	if err != nil {
		return fmt.Errorf("signal %v to process %d: %w", sig, p.pid, err)
	}
	return nil
}

// waitChild starts the waiter of a child process; wait is the call that
// reaps it (libcontainer's Process.Wait). It must be called exactly once per
// process, right after the process starts, so that an exit that comes before
// anyone asks is not lost.
//
// The exit is seen through a pidfd on the reactor, and only then is wait
// called, from a goroutine that lives for that moment: wait must still run,
// since it releases what exec.Cmd holds, but it returns at once on a zombie
// instead of holding an OS thread for the process's whole life.
//
// afterExit, if not nil, runs after the reap and before Done is closed: an
// init's last output must be in its log by the time anyone sees it stopped.
func waitChild(rx *reactor, w *waiters, pid int, spec runtime.ProcessSpec, send func(os.Signal) error, wait func() (*os.ProcessState, error), afterExit func()) *process {
	spec.Stdin, spec.Stdout, spec.Stderr = nil, nil, nil
	p := newProcess(pid, spec, send)
	w.add(pid)
	reap := func() {
		state, err := wait()
		p.ended.Store(true)
		w.remove(pid)
		st := exitStatus(state, err)
		if afterExit != nil {
			afterExit()
		}
		p.finish(st)
	}
	// A child nobody has reaped yet is at worst a zombie, which pidfd_open
	// still finds: an exit before this point is not missed.
	if err := onExit(rx, pid, func() { go reap() }); err != nil {
		// No pidfd to be had (out of descriptors): wait the costly way
		// rather than lose the exit.
		go reap()
	}
	return p
}

// onExit calls exited, on the reactor's goroutine, once process pid has
// exited (it must not block).
func onExit(rx *reactor, pid int, exited func()) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// A pidfd stays readable once its process has exited: one event is all
	// there is, and the handler hands the pidfd back at once.
	_, err = rx.add(fd, unix.EPOLLIN, func(uint32) bool {
		exited()
		return false
	}, func() { unix.Close(fd) })
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	return nil
}

// exitStatus turns what wait returned into an ExitStatus.
func exitStatus(state *os.ProcessState, err error) runtime.ExitStatus {
	st := runtime.ExitStatus{Code: -1, At: time.Now()}
	if state == nil {
		var exitErr interface{ Sys() any }
		if errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok {
				return fromWaitStatus(ws, st.At)
			}
		}
		return st
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok {
		return fromWaitStatus(ws, st.At)
	}
	st.Code = state.ExitCode()
	return st
}

func fromWaitStatus(ws syscall.WaitStatus, at time.Time) runtime.ExitStatus {
	switch {
	case ws.Signaled():
		return runtime.ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal(), At: at}
	case ws.Exited():
		return runtime.ExitStatus{Code: ws.ExitStatus(), At: at}
	}
	return runtime.ExitStatus{Code: -1, At: at}
}

// watchForeign watches a process that is not our child (the init of a
// container started by an earlier daemon) through a pidfd on the reactor:
// the kernel makes it readable when the process exits. Its exit code cannot
// be known.
func watchForeign(rx *reactor, pid int, spec runtime.ProcessSpec, afterExit func()) (*process, error) {
	handle, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("find process %d: %w", pid, err)
	}
	p := newProcess(pid, spec, handle.Signal)
	exited := func() {
		p.ended.Store(true)
		st := runtime.ExitStatus{Code: -1, At: time.Now()}
		if afterExit != nil {
			// Waits for the log to drain, which the reactor itself does.
			go func() {
				afterExit()
				p.finish(st)
			}()
			return
		}
		p.finish(st)
	}
	if err := onExit(rx, pid, exited); err != nil {
		return nil, err
	}
	return p, nil
}
