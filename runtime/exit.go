package runtime

import (
	"context"
	"sync"
)

// Exit records how a process ended, once, for whoever asks: the Done
// channel, Wait, and the OnExit callbacks of the runtime.Process contract.
// The runtimes (linux, fake, remote) embed one per process; each decides on
// which goroutine the callbacks registered before the exit run (Finish
// returns them), while one registered after the exit gets a goroutine of its
// own, never its caller's. The zero value is not usable: use NewExit.
type Exit struct {
	done chan struct{}

	mu       sync.Mutex
	finished bool
	// status is written once, before done is closed: a reader that has seen
	// done closed reads it without the lock (the close is the barrier).
	status ExitStatus
	onExit []func(ExitStatus)
}

// NewExit returns the record of a process that has not exited yet.
func NewExit() *Exit { return &Exit{done: make(chan struct{})} }

// Done is closed once the exit is recorded.
func (e *Exit) Done() <-chan struct{} { return e.done }

// Exited reports whether the exit is recorded.
func (e *Exit) Exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// Status returns the exit status; it is the zero value until Done is closed.
func (e *Exit) Status() ExitStatus {
	if !e.Exited() {
		return ExitStatus{}
	}
	return e.status
}

// Wait returns the exit status once recorded, or ctx's error. An exit
// already recorded wins over a ctx already done.
func (e *Exit) Wait(ctx context.Context) (ExitStatus, error) {
	if e.Exited() {
		return e.status, nil
	}
	select {
	case <-e.done:
		return e.status, nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// OnExit registers fn to be called once with the exit status: by whoever
// calls Finish's result, or at once on a goroutine of its own if the exit is
// recorded already.
func (e *Exit) OnExit(fn func(ExitStatus)) {
	e.mu.Lock()
	if !e.finished {
		e.onExit = append(e.onExit, fn)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	go fn(e.status)
}

// Finish records st, closes Done and returns the callbacks registered so
// far, for the caller to call with st. A second Finish changes nothing and
// returns none.
func (e *Exit) Finish(st ExitStatus) []func(ExitStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.finished {
		return nil
	}
	e.status = st
	e.finished = true
	close(e.done)
	fns := e.onExit
	e.onExit = nil
	return fns
}
