package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// Client is the daemon's end: a runtime.Runtime and runtime.Preparer whose
// containers live in the engine at the other end of the connection. Its
// methods are safe for concurrent use.
type Client struct {
	w    *wire
	name string // of the engine, for errors

	mu      sync.Mutex
	next    uint64              // the last call id
	pending map[uint64]*pending // calls awaiting their reply
	procs   map[uint64]*process // processes not yet exited, by handle
	ooms    map[uint64]*container
	err     error // why the connection is gone
	done    chan struct{}

	dropped atomic.Uint64 // the last LogDropped answered
}

var (
	_ runtime.Runtime  = (*Client)(nil)
	_ runtime.Preparer = (*Client)(nil)
	_ Engine           = (*Client)(nil)
)

// pending is a call awaiting its reply. decode, when set, turns the reply's
// result into the value the call returns; it runs on the reader, before the
// next frame is read, so that the objects of an answer are known before
// any exit frame that names them.
type pending struct {
	ch     chan reply
	decode func(json.RawMessage) (any, error)
}

type reply struct {
	v   any
	err error
}

// NewClient returns a client of the engine served at the other end of
// conn, and starts reading its answers. It owns conn from then on.
func NewClient(conn *net.UnixConn) *Client {
	name := "runtime engine"
	if a := conn.RemoteAddr(); a != nil {
		if s := a.String(); s != "" && s != "<nil>" && s != "@" {
			name += " at " + s
		}
	}
	c := &Client{w: newWire(conn), name: name, pending: map[uint64]*pending{},
		procs: map[uint64]*process{}, ooms: map[uint64]*container{}, done: make(chan struct{})}
	go c.read()
	return c
}

// Close closes the connection: calls in flight and later ones fail with
// errclass.Unavailable, and the engine's Serve returns. The containers
// keep running.
func (c *Client) Close() error {
	c.fail(errors.New("client closed"))
	return nil
}

// Done is closed once the connection is gone (the engine died or closed
// it, or Close was called); Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up, then why it is gone: an
// error of class errclass.Unavailable that names the engine.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// read reads frames until the connection fails.
func (c *Client) read() {
	for {
		f, files, err := c.w.read()
		if err != nil {
			c.fail(err)
			c.w.close()
			return
		}
		closeFiles(files) // the server sends none
		switch f.Kind {
		case kindReply:
			c.mu.Lock()
			p := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if p == nil {
				continue
			}
			var r reply
			if p.decode != nil && (f.Err == nil || len(f.Result) > 0) {
				r.v, r.err = p.decode(f.Result)
			}
			if f.Err != nil {
				r.err = fromWire(f.Err)
			}
			p.ch <- r
		case kindExit:
			c.mu.Lock()
			p := c.procs[f.P]
			delete(c.procs, f.P)
			c.mu.Unlock()
			if p != nil && f.Status != nil {
				p.finish(f.Status.status())
			}
		case kindOOM:
			c.mu.Lock()
			ct := c.ooms[f.C]
			c.mu.Unlock()
			if ct != nil {
				ct.oomKilled()
			}
		}
	}
}

// fail marks the connection gone with cause, closes it, and fails every
// call awaiting its reply.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("%s is gone: %v: %w", c.name, cause, errclass.Unavailable)
	pend := c.pending
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	c.w.conn.Close()
	for _, p := range pend {
		p.ch <- reply{err: c.err}
	}
}

// call sends f as a call under ctx, with files' descriptors, and waits for
// its reply. When ctx is canceled the server is told, and the call still
// waits for the server's answer: that is when the runtime is done with it
// (a canceled Start has removed what it made).
func (c *Client) call(ctx context.Context, f *frame, files []*os.File, decode func(json.RawMessage) (any, error)) (any, error) {
	p := &pending{ch: make(chan reply, 1), decode: decode}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.next++
	id := c.next
	c.pending[id] = p
	c.mu.Unlock()
	f.Kind, f.ID = kindCall, id
	if dl, ok := ctx.Deadline(); ok {
		f.Deadline = dl.UnixNano()
	}
	if err := c.w.write(f, files); err != nil {
		c.fail(err)
	}
	done := ctx.Done()
	for {
		select {
		case r := <-p.ch:
			return r.v, r.err
		case <-done:
			done = nil
			// A deadline ends the server's context by itself.
			if errors.Is(ctx.Err(), context.Canceled) {
				if err := c.w.write(&frame{Kind: kindCancel, ID: id}, nil); err != nil {
					c.fail(err)
				}
			}
		}
	}
}

// callValue is call for a result of type T.
func callValue[T any](ctx context.Context, c *Client, f *frame) (T, error) {
	v, err := c.call(ctx, f, nil, func(raw json.RawMessage) (any, error) {
		var t T
		if len(raw) == 0 {
			return t, nil
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return t, fmt.Errorf("decode the answer to %s: %w", f.Op, err)
		}
		return t, nil
	})
	t, _ := v.(T)
	return t, err
}

// callContainer is call for a container.
func (c *Client) callContainer(ctx context.Context, f *frame) (runtime.Container, error) {
	return c.callContainerWith(ctx, f, nil)
}

// callContainerWith is callContainer sending files with the frame.
func (c *Client) callContainerWith(ctx context.Context, f *frame, files []*os.File) (runtime.Container, error) {
	v, err := c.call(ctx, f, files, func(raw json.RawMessage) (any, error) {
		var m containerMsg
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("decode the answer to %s: %w", f.Op, err)
		}
		ct := &container{cl: c, h: m.H, id: m.ID, bundle: m.Bundle, log: m.Log, join: m.Join}
		ct.init = c.newProcess(m.Init)
		return ct, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*container), nil
}

// newProcess makes the client's side of a process the server handed out,
// and routes its exit frame to it.
func (c *Client) newProcess(m processMsg) *process {
	p := &process{Exit: runtime.NewExit(), cl: c, pid: m.Pid, spec: m.Spec}
	c.mu.Lock()
	c.procs[m.H] = p
	c.mu.Unlock()
	return p
}

// Start implements runtime.Runtime.
func (c *Client) Start(ctx context.Context, id string, opts runtime.StartOptions) (runtime.Container, error) {
	f := &frame{Op: "start", Name: id}
	var files []*os.File
	for i, file := range []*os.File{opts.Stdin, nil, nil, opts.ConsoleSocket} {
		if file != nil {
			f.Stdio = append(f.Stdio, i)
			files = append(files, file)
		}
	}
	opts.Stdin, opts.ConsoleSocket = nil, nil
	f.Start = &opts
	return c.callContainerWith(ctx, f, files)
}

// Check implements runtime.Runtime.
func (c *Client) Check(ctx context.Context, id string, opts runtime.StartOptions) error {
	_, err := c.call(ctx, &frame{Op: "check", Name: id, Start: &opts}, nil, nil)
	return err
}

// Load implements runtime.Runtime.
func (c *Client) Load(ctx context.Context, id string) (runtime.Container, error) {
	return c.callContainer(ctx, &frame{Op: "load", Name: id})
}

// List implements runtime.Runtime.
func (c *Client) List(ctx context.Context) ([]string, error) {
	return callValue[[]string](ctx, c, &frame{Op: "list"})
}

// Prepare implements runtime.Preparer.
func (c *Client) Prepare(ctx context.Context, bundlePath string) (runtime.Prepared, error) {
	m, err := callValue[preparedMsg](ctx, c, &frame{Op: "prepare", Bundle: bundlePath})
	if err != nil {
		return nil, err
	}
	return &prepared{cl: c, h: m.H, bundle: m.Bundle}, nil
}

// Reconcile is the engine's Reconcile (linux.Runtime.Reconcile): what was
// removed, also when it fails.
func (c *Client) Reconcile(ctx context.Context) (runtime.Reconciled, error) {
	return callValue[runtime.Reconciled](ctx, c, &frame{Op: "reconcile"})
}

// RemovePrepared is the engine's RemovePrepared.
func (c *Client) RemovePrepared(ctx context.Context) error {
	_, err := c.call(ctx, &frame{Op: "remove-prepared"}, nil, nil)
	return err
}

// LogDropped is the engine's LogDropped; once the engine is gone, the last
// count it gave.
func (c *Client) LogDropped() uint64 {
	n, err := callValue[uint64](context.Background(), c, &frame{Op: "log-dropped"})
	if err != nil {
		return c.dropped.Load()
	}
	c.dropped.Store(n)
	return n
}

// container is a container in the engine.
type container struct {
	cl     *Client
	h      uint64 // the server's handle
	id     string
	bundle string
	log    string
	join   []runtime.Join
	init   *process

	mu      sync.Mutex
	onOOM   []*func()
	deleted bool // deleted through this object: the server forgot its handle
}

var _ runtime.Container = (*container)(nil)

func (ct *container) ID() string            { return ct.id }
func (ct *container) BundlePath() string    { return ct.bundle }
func (ct *container) Init() runtime.Process { return ct.init }
func (ct *container) LogPath() string       { return ct.log }

// Joined implements runtime.Container.
func (ct *container) Joined() []runtime.Join { return ct.join }

// op is a call on the container.
func (ct *container) op(op string) *frame { return &frame{Op: op, C: ct.h, Name: ct.id} }

func (ct *container) do(ctx context.Context, f *frame) error {
	_, err := ct.cl.call(ctx, f, nil, nil)
	return err
}

// Exec implements runtime.Container: the spec's stdio files go to the
// engine as descriptors.
func (ct *container) Exec(ctx context.Context, spec runtime.ProcessSpec) (runtime.Process, error) {
	f := ct.op("exec")
	var files []*os.File
	for i, file := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr, spec.ConsoleSocket} {
		if file != nil {
			f.Stdio = append(f.Stdio, i)
			files = append(files, file)
		}
	}
	spec.Stdin, spec.Stdout, spec.Stderr, spec.ConsoleSocket = nil, nil, nil, nil
	f.Spec = &spec
	v, err := ct.cl.call(ctx, f, files, func(raw json.RawMessage) (any, error) {
		var m processMsg
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("decode the answer to exec: %w", err)
		}
		return ct.cl.newProcess(m), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*process), nil
}

// Signal implements runtime.Container.
func (ct *container) Signal(pid int, sig syscall.Signal) error {
	f := ct.op("signal")
	f.Pid, f.Sig = pid, int(sig)
	return ct.do(context.Background(), f)
}

// Processes implements runtime.Container.
func (ct *container) Processes() ([]int, error) {
	return callValue[[]int](context.Background(), ct.cl, ct.op("processes"))
}

// Status implements runtime.Container.
func (ct *container) Status() (runtime.Status, error) {
	return callValue[runtime.Status](context.Background(), ct.cl, ct.op("status"))
}

// Pause implements runtime.Container.
func (ct *container) Pause() error { return ct.do(context.Background(), ct.op("pause")) }

// Resume implements runtime.Container.
func (ct *container) Resume() error { return ct.do(context.Background(), ct.op("resume")) }

// Stats implements runtime.Container.
func (ct *container) Stats() (*runtime.Stats, error) {
	return callValue[*runtime.Stats](context.Background(), ct.cl, ct.op("stats"))
}

// Update implements runtime.Container.
func (ct *container) Update(r runtime.Resources) error {
	f := ct.op("update")
	f.Res = &r
	return ct.do(context.Background(), f)
}

// OnOOM implements runtime.Container. The engine pushes each kill once per
// container, whatever the number of callbacks; they are called here, on
// the client's reader, in the order registered.
func (ct *container) OnOOM(fn func()) error {
	entry := &fn
	ct.mu.Lock()
	if ct.deleted {
		ct.mu.Unlock()
		return fmt.Errorf("container %q was deleted: %w", ct.id, errclass.NotFound)
	}
	// Listed before the engine is asked, so that a kill it reports before
	// its answer finds fn.
	ct.onOOM = append(ct.onOOM, entry)
	ct.mu.Unlock()
	ct.cl.mu.Lock()
	ct.cl.ooms[ct.h] = ct
	ct.cl.mu.Unlock()
	if err := ct.do(context.Background(), ct.op("onoom")); err != nil {
		ct.mu.Lock()
		ct.onOOM = slices.DeleteFunc(ct.onOOM, func(e *func()) bool { return e == entry })
		ct.mu.Unlock()
		return err
	}
	return nil
}

// oomKilled calls the OnOOM callbacks, on the reader.
func (ct *container) oomKilled() {
	ct.mu.Lock()
	fns := slices.Clone(ct.onOOM)
	ct.mu.Unlock()
	for _, fn := range fns {
		(*fn)()
	}
}

// Checkpoint implements runtime.Container.
func (ct *container) Checkpoint(ctx context.Context, dir string, o runtime.CheckpointOptions) error {
	f := ct.op("checkpoint")
	f.Dir, f.Checkpoint = dir, &o
	return ct.do(ctx, f)
}

// Delete implements runtime.Container. Once it has succeeded, the engine
// has forgotten the container: a second Delete succeeds here, and other
// calls fail with errclass.NotFound.
func (ct *container) Delete(ctx context.Context, force bool) error {
	ct.mu.Lock()
	deleted := ct.deleted
	ct.mu.Unlock()
	if deleted {
		return nil
	}
	f := ct.op("delete")
	f.Force = force
	if err := ct.do(ctx, f); err != nil {
		return err
	}
	ct.mu.Lock()
	ct.deleted = true
	ct.onOOM = nil
	ct.mu.Unlock()
	ct.cl.mu.Lock()
	delete(ct.cl.ooms, ct.h)
	ct.cl.mu.Unlock()
	return nil
}

// process is a process in the engine; its exit comes as an exit frame.
type process struct {
	*runtime.Exit // Done, OnExit; the exit frame records it (finish)
	cl            *Client
	pid           int
	spec          runtime.ProcessSpec
}

var _ runtime.Process = (*process)(nil)

func (p *process) Pid() int                  { return p.pid }
func (p *process) Spec() runtime.ProcessSpec { return p.spec }

// Wait implements runtime.Process. It also returns, with an
// errclass.Unavailable error, when the connection to the engine is gone:
// the exit can no longer be learnt.
func (p *process) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	if p.Exited() {
		return p.Status(), nil
	}
	select {
	case <-p.Done():
		return p.Status(), nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, fmt.Errorf("wait for pid %d: %w", p.pid, ctx.Err())
	case <-p.cl.done:
		if p.Exited() {
			return p.Status(), nil
		}
		return runtime.ExitStatus{}, fmt.Errorf("wait for pid %d: %w", p.pid, p.cl.Err())
	}
}

// OnExit implements runtime.Process: fn is called on the client's reader
// when the exit frame comes, or on a goroutine of its own when the process
// had exited already. It is never called if the connection is lost first.
func (p *process) OnExit(fn func(runtime.ExitStatus)) { p.Exit.OnExit(fn) }

// finish records the exit of the exit frame and calls the callbacks, on
// the client's reader; a second frame for the same process changes nothing.
func (p *process) finish(st runtime.ExitStatus) {
	for _, fn := range p.Exit.Finish(st) {
		fn(st)
	}
}

// prepared is a prepared container in the engine.
type prepared struct {
	cl     *Client
	h      uint64
	bundle string
}

var _ runtime.Prepared = (*prepared)(nil)

func (p *prepared) BundlePath() string { return p.bundle }

// Stale implements runtime.Prepared; it says true when the engine cannot
// be asked, so that nobody claims what cannot be vouched for.
func (p *prepared) Stale() bool {
	stale, err := callValue[bool](context.Background(), p.cl, &frame{Op: "stale", P: p.h})
	return stale || err != nil
}

// Claim implements runtime.Prepared.
func (p *prepared) Claim(ctx context.Context, id string, o runtime.ClaimOptions) (runtime.Container, error) {
	return p.cl.callContainer(ctx, &frame{Op: "claim", P: p.h, Name: id, Claim: &o})
}

// Discard implements runtime.Prepared.
func (p *prepared) Discard(ctx context.Context) error {
	_, err := p.cl.call(ctx, &frame{Op: "discard", P: p.h}, nil, nil)
	return err
}
