package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// Engine is what Serve serves: a runtime that can prepare containers, with
// the maintenance calls a daemon makes when it starts. *linux.Runtime is
// one.
type Engine interface {
	runtime.Runtime
	runtime.Preparer
	// Reconcile makes the state say only what is true, for a daemon
	// starting after one that died (linux.Runtime.Reconcile).
	Reconcile(ctx context.Context) (runtime.Reconciled, error)
	// RemovePrepared destroys the prepared containers nobody claimed.
	RemovePrepared(ctx context.Context) error
	// LogDropped returns how many bytes of container output were dropped.
	LogDropped() uint64
}

// server is one connection's server: the objects it has handed out, by
// handle, and the calls in flight, by id.
type server struct {
	rt  Engine
	w   *wire
	out outbox
	// ending is closed when Serve's context ends: the calls it cancels
	// then answer nothing, and their clients see the engine go, not a
	// cancellation they never asked for.
	ending <-chan struct{}

	handles atomic.Uint64 // the last handle given out

	mu    sync.Mutex
	conts map[uint64]*served
	preps map[uint64]runtime.Prepared
	calls map[uint64]context.CancelFunc
}

// served is a container handed out.
type served struct {
	c runtime.Container
	// initSent is closed once the init's exit frame is queued: a Delete
	// answers after it, so that the init is done on the client when Delete
	// returns there, as it is here.
	initSent chan struct{}

	oomMu sync.Mutex
	oom   bool // an OnOOM that pushes oom frames is registered
}

// Serve serves rt's runtime over conn until conn closes or ctx ends; it
// then cancels the calls in flight, waits for them, closes conn and
// returns (nil when the peer closed the connection). What the client
// started keeps running.
func Serve(ctx context.Context, conn *net.UnixConn, rt Engine) error {
	s := &server{rt: rt, w: newWire(conn), conts: map[uint64]*served{},
		preps: map[uint64]runtime.Prepared{}, calls: map[uint64]context.CancelFunc{}}
	s.out.wake = make(chan struct{}, 1)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ending = parent.Done()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		if err := s.out.run(s.w); err != nil {
			conn.Close() // and the reader stops
		}
	}()
	var calls sync.WaitGroup
	var err error
	for {
		var f *frame
		var files []*os.File
		f, files, err = s.w.read()
		if err != nil {
			break
		}
		switch f.Kind {
		case kindCall:
			callCtx, cancelCall := ctx, context.CancelFunc(func() {})
			if f.Deadline != 0 {
				callCtx, cancelCall = context.WithDeadline(ctx, time.Unix(0, f.Deadline))
			}
			callCtx, cancelOnly := context.WithCancel(callCtx)
			s.mu.Lock()
			s.calls[f.ID] = cancelOnly
			s.mu.Unlock()
			calls.Add(1)
			go func() {
				defer calls.Done()
				defer cancelCall()
				s.serve(callCtx, f, files)
			}()
		case kindCancel:
			s.mu.Lock()
			if c := s.calls[f.ID]; c != nil {
				c()
			}
			s.mu.Unlock()
			closeFiles(files)
		default:
			closeFiles(files)
		}
	}
	cancel()
	calls.Wait()
	s.out.close()
	writer.Wait()
	conn.Close()
	s.w.close()
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		return nil
	}
	return err
}

// serve answers one call, then does what must come after the answer on
// the wire (registering the exit frames of the processes it handed out).
func (s *server) serve(ctx context.Context, f *frame, files []*os.File) {
	res, after, err := s.dispatch(ctx, f, files)
	closeFiles(files) // the process has its own copies now
	s.mu.Lock()
	if c := s.calls[f.ID]; c != nil {
		c()
		delete(s.calls, f.ID)
	}
	s.mu.Unlock()
	select {
	case <-s.ending:
		return
	default:
	}
	reply := &frame{Kind: kindReply, ID: f.ID}
	if err == nil && res != nil {
		reply.Result, err = json.Marshal(res)
	}
	if err != nil {
		reply.Err = toWire(err)
		var re *reconcileError
		if errors.As(err, &re) {
			reply.Result, _ = json.Marshal(re.rec)
		}
	}
	s.out.put(reply)
	if after != nil {
		after()
	}
}

func (s *server) dispatch(ctx context.Context, f *frame, files []*os.File) (res any, after func(), err error) {
	switch f.Op {
	case "start":
		if f.Start == nil || len(f.Stdio) != len(files) {
			return nil, nil, badCall(f)
		}
		opts := *f.Start
		for i, which := range f.Stdio {
			switch which {
			case 0:
				opts.Stdin = files[i]
			case 3:
				opts.ConsoleSocket = files[i]
			default:
				return nil, nil, badCall(f)
			}
		}
		return s.container(s.rt.Start(ctx, f.Name, opts))
	case "check":
		if f.Start == nil {
			return nil, nil, badCall(f)
		}
		return nil, nil, s.rt.Check(ctx, f.Name, *f.Start)
	case "load":
		return s.container(s.rt.Load(ctx, f.Name))
	case "list":
		ids, err := s.rt.List(ctx)
		return ids, nil, err
	case "prepare":
		p, err := s.rt.Prepare(ctx, f.Bundle)
		if err != nil {
			return nil, nil, err
		}
		h := s.handles.Add(1)
		s.mu.Lock()
		s.preps[h] = p
		s.mu.Unlock()
		return preparedMsg{H: h, Bundle: p.BundlePath()}, nil, nil
	case "stale", "claim", "discard":
		s.mu.Lock()
		p := s.preps[f.P]
		s.mu.Unlock()
		if p == nil {
			return nil, nil, fmt.Errorf("prepared container %d: claimed or discarded already: %w", f.P, errclass.NotFound)
		}
		switch f.Op {
		case "stale":
			return p.Stale(), nil, nil
		case "discard":
			s.dropPrepared(f.P)
			return nil, nil, p.Discard(ctx)
		}
		var o runtime.ClaimOptions
		if f.Claim != nil {
			o = *f.Claim
		}
		c, err := p.Claim(ctx, f.Name, o)
		if !errors.Is(err, errclass.AlreadyExists) {
			s.dropPrepared(f.P)
		}
		return s.container(c, err)
	case "reconcile":
		rec, err := s.rt.Reconcile(ctx)
		if err != nil {
			// The report says what was done before the error.
			return nil, nil, &reconcileError{rec: rec, err: err}
		}
		return rec, nil, nil
	case "remove-prepared":
		return nil, nil, s.rt.RemovePrepared(ctx)
	case "log-dropped":
		return s.rt.LogDropped(), nil, nil
	}
	s.mu.Lock()
	sc := s.conts[f.C]
	s.mu.Unlock()
	if sc == nil {
		return nil, nil, fmt.Errorf("container %q was deleted: %w", f.Name, errclass.NotFound)
	}
	c := sc.c
	switch f.Op {
	case "exec":
		if f.Spec == nil || len(f.Stdio) != len(files) {
			return nil, nil, badCall(f)
		}
		spec := *f.Spec
		for i, which := range f.Stdio {
			switch which {
			case 0:
				spec.Stdin = files[i]
			case 1:
				spec.Stdout = files[i]
			case 2:
				spec.Stderr = files[i]
			case 3:
				spec.ConsoleSocket = files[i]
			}
		}
		p, err := c.Exec(ctx, spec)
		if err != nil {
			return nil, nil, err
		}
		msg, after := s.process(p, nil)
		return msg, after, nil
	case "signal":
		return nil, nil, c.Signal(f.Pid, syscall.Signal(f.Sig))
	case "processes":
		pids, err := c.Processes()
		return pids, nil, err
	case "status":
		st, err := c.Status()
		return st, nil, err
	case "pause":
		return nil, nil, c.Pause()
	case "resume":
		return nil, nil, c.Resume()
	case "stats":
		st, err := c.Stats()
		return st, nil, err
	case "update":
		if f.Res == nil {
			return nil, nil, badCall(f)
		}
		return nil, nil, c.Update(*f.Res)
	case "onoom":
		sc.oomMu.Lock()
		defer sc.oomMu.Unlock()
		if sc.oom {
			return nil, nil, nil
		}
		h := f.C
		if err := c.OnOOM(func() { s.out.put(&frame{Kind: kindOOM, C: h}) }); err != nil {
			return nil, nil, err
		}
		sc.oom = true
		return nil, nil, nil
	case "checkpoint":
		if f.Checkpoint == nil {
			return nil, nil, badCall(f)
		}
		return nil, nil, c.Checkpoint(ctx, f.Dir, *f.Checkpoint)
	case "delete":
		if err := c.Delete(ctx, f.Force); err != nil {
			return nil, nil, err
		}
		select {
		case <-c.Init().Done():
			<-sc.initSent
		default:
		}
		s.dropContainer(f.C, c.ID())
		return nil, nil, nil
	}
	return nil, nil, badCall(f)
}

func badCall(f *frame) error {
	return fmt.Errorf("remote runtime: malformed call %q: %w", f.Op, errclass.InvalidArgument)
}

// container hands c out: it gets a handle, and its init's exit frame is
// registered after the answer.
func (s *server) container(c runtime.Container, err error) (any, func(), error) {
	if err != nil {
		return nil, nil, err
	}
	sc := &served{c: c, initSent: make(chan struct{})}
	h := s.handles.Add(1)
	s.mu.Lock()
	s.conts[h] = sc
	s.mu.Unlock()
	init, after := s.process(c.Init(), sc.initSent)
	return containerMsg{H: h, ID: c.ID(), Bundle: c.BundlePath(), Log: c.LogPath(), Init: init, Join: c.Joined()}, after, nil
}

// process hands p out; after registers its exit frame, which must follow
// the answer that names p on the wire (the client knows p from it). sent,
// if not nil, is closed once the frame is queued.
func (s *server) process(p runtime.Process, sent chan struct{}) (processMsg, func()) {
	h := s.handles.Add(1)
	return processMsg{H: h, Pid: p.Pid(), Spec: p.Spec()}, func() {
		p.OnExit(func(st runtime.ExitStatus) {
			s.out.put(&frame{Kind: kindExit, P: h, Status: toExitStatus(st)})
			if sent != nil {
				close(sent)
			}
		})
	}
}

func (s *server) dropPrepared(h uint64) {
	s.mu.Lock()
	delete(s.preps, h)
	s.mu.Unlock()
}

// dropContainer forgets the deleted container h, and the other handles of
// the same container given out before it (by Load): the server keeps no
// object for what is gone. A handle given out later is a new container of
// the same id.
func (s *server) dropContainer(h uint64, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sc := range s.conts {
		if k <= h && sc.c.ID() == id {
			delete(s.conts, k)
		}
	}
}

// reconcileError carries what Reconcile did along with its error.
type reconcileError struct {
	rec runtime.Reconciled
	err error
}

func (e *reconcileError) Error() string { return e.err.Error() }
func (e *reconcileError) Unwrap() error { return e.err }

// outbox queues the server's frames for its one writer: exit and OOM
// frames are queued by callbacks of the runtime, which must not block.
type outbox struct {
	mu     sync.Mutex
	q      []*frame
	closed bool
	wake   chan struct{}
}

func (o *outbox) put(f *frame) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.q = append(o.q, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// close has run write what is queued and return.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run writes the queued frames until close, or an error.
func (o *outbox) run(w *wire) error {
	for range o.wake {
		o.mu.Lock()
		q, closed := o.q, o.closed
		o.q = nil
		o.mu.Unlock()
		for _, f := range q {
			if err := w.write(f, nil); err != nil {
				o.mu.Lock()
				o.closed, o.q = true, nil
				o.mu.Unlock()
				return err
			}
		}
		if closed {
			return nil
		}
	}
	return nil
}
