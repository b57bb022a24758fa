package actors

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// record is what a container actor knows. It belongs to the actor alone,
// but it outlives an actor instance: when a panic restarts the actor, the new
// instance takes the record over, so the live processes, their waiters and
// the queued work are never lost (see supervision.go).
type record struct {
	id         string
	bundlePath string
	created    time.Time
	ctr        runtime.Container // nil until started
	status     runtime.Status
	exit       *runtime.ExitStatus
	procs      []runtime.Process // live ones, the init first
	// work is runtime work that blocks, run one at a time off the mailbox:
	// libcontainer serialises a container's operations anyway, and an exec
	// racing a pause can deadlock it (exec into a frozen container holds
	// the container's lock until a thaw that then cannot happen).
	work []work
	busy bool
	// startReply is who waits for the start to finish.
	startReply *actor.PID
	// removing is set once the actor has told the supervisor it is going.
	removing bool
	// restoreFrom and restoreName name the checkpoint to start from, if any.
	restoreFrom, restoreName string
	// pool is the warm pool of the bundle, if any: the start claims one of
	// its prepared containers when one is ready. warm says that it did.
	pool *warmPool
	warm bool
	// log bounds the container's log, as its start asked.
	log containerlog.Limits
}

// work is one piece of queued runtime work and the command it serves, so
// that work that can no longer run is answered rather than dropped.
type work struct {
	msg     any
	replyTo *actor.PID
	run     func()
}

// containerActor owns one container: its lifecycle, its processes, its
// events. Its behavior follows the container's status.
type containerActor struct {
	rec      *record
	deps     *deps
	behavior actor.Behavior
	log      *slog.Logger
}

// deps are what every container actor shares with the supervisor.
type deps struct {
	runtime     runtime.Runtime
	preparer    runtime.Preparer  // nil: no warm pools
	checkpoints *checkpoint.Store // nil: checkpoints unavailable
	criuErr     func() error      // why CRIU cannot be used now, if so; nil: usable
	events      *events.Log
	admission   *admission
	logger      *slog.Logger
	timeout     time.Duration // bound on one runtime operation
}

// criuUnusable says why CRIU cannot be used now, or nil.
func (d *deps) criuUnusable() error {
	if d.criuErr == nil {
		return nil
	}
	return d.criuErr()
}

func newContainerProps(rec *record, d *deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &containerActor{rec: rec, deps: d, behavior: actor.NewBehavior(),
			log: d.logger.With("id", rec.id)}
	})
}

// Receive handles lifecycle messages and the events of blocking work
// itself, and delegates commands to the behavior of the current status.
func (a *containerActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopped); ok {
		a.forget()
		return
	}
	if a.rec.removing {
		// Between telling the supervisor and stopping: the container is gone.
		if r, ok := failedResult(ctx.Message(), fmt.Errorf("container %q: %w", a.rec.id, runtime.ErrNotFound)); ok && ctx.Sender() != nil {
			ctx.Respond(r)
		}
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.become()
	case *actor.Restarting:
		a.log.Error("container actor restarting after a failure; its record is kept")
	case *containerStartFinished:
		a.startFinished(ctx, msg)
	case *processExited:
		a.processExited(ctx, msg.pid, msg.status)
	case *oomKilled:
		a.publish(api.Event{Type: api.EventOOM})
	case *execFinished:
		a.execFinished(ctx, msg)
	case *pauseFinished:
		a.pauseFinished(ctx, msg)
	case *updateFinished:
		ctx.Send(msg.replyTo, &UpdateResourcesResult{Err: msg.err})
		a.next()
	case *deleteFinished:
		a.deleteFinished(ctx, msg)
	case *checkpointFinished:
		a.checkpointFinished(ctx, msg)
	case *GetContainer:
		r := &GetContainerResult{Container: a.info()}
		if a.rec.ctr != nil {
			r.LogPath = a.rec.ctr.LogPath()
		}
		ctx.Respond(r)
	case *GetStats:
		a.stats(ctx)
	default:
		a.behavior.Receive(ctx)
	}
}

// become switches to the behavior of the container's status.
func (a *containerActor) become() {
	switch a.rec.status {
	case runtime.Running:
		a.behavior.Become(a.running)
	case runtime.Paused:
		a.behavior.Become(a.paused)
	case runtime.Stopped:
		a.behavior.Become(a.stopped)
	default:
		a.behavior.Become(a.starting)
	}
}

// starting is the behavior while the runtime starts the container.
func (a *containerActor) starting(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *StartContainer:
		a.start(ctx, msg)
	default:
		a.refuse(ctx, "is starting")
	}
}

// running is the behavior of a running container.
func (a *containerActor) running(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ExecProcess:
		a.exec(ctx, msg)
	case *SignalProcess:
		ctx.Respond(&SignalProcessResult{Err: a.signal(msg.Pid, msg.Signal)})
	case *SignalContainer:
		ctx.Respond(&SignalContainerResult{Err: a.signal(a.rec.ctr.Init().Pid(), msg.Signal)})
	case *PauseContainer:
		a.pause(ctx, true)
	case *ResumeContainer:
		ctx.Respond(&ResumeContainerResult{Container: a.info()})
	case *UpdateResources:
		a.update(ctx, msg)
	case *CheckpointContainer:
		a.checkpoint(ctx, msg)
	case *DeleteContainer:
		a.delete(ctx, msg)
	default:
		a.refuse(ctx, "is running")
	}
}

// paused is the behavior of a frozen container.
func (a *containerActor) paused(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ExecProcess:
		a.refuse(ctx, "is paused")
	case *SignalProcess:
		ctx.Respond(&SignalProcessResult{Err: a.signal(msg.Pid, msg.Signal)})
	case *SignalContainer:
		ctx.Respond(&SignalContainerResult{Err: a.signal(a.rec.ctr.Init().Pid(), msg.Signal)})
	case *PauseContainer:
		ctx.Respond(&PauseContainerResult{Container: a.info()})
	case *ResumeContainer:
		a.pause(ctx, false)
	case *UpdateResources:
		a.update(ctx, msg)
	case *CheckpointContainer:
		a.checkpoint(ctx, msg)
	case *DeleteContainer:
		a.delete(ctx, msg)
	default:
		a.refuse(ctx, "is paused")
	}
}

// stopped is the behavior once the init has exited: only delete is left.
func (a *containerActor) stopped(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *DeleteContainer:
		a.delete(ctx, msg)
	default:
		a.refuse(ctx, "is stopped")
	}
}

// refuse answers a command the current status forbids.
func (a *containerActor) refuse(ctx actor.Context, why string) {
	if ctx.Sender() == nil {
		return
	}
	err := fmt.Errorf("container %q %s: %w", a.rec.id, why, runtime.ErrFailedPrecondition)
	if r, ok := failedResult(ctx.Message(), err); ok {
		ctx.Respond(r)
	}
}

// enqueue adds blocking work for the current command; it runs when the work
// before it has finished.
func (a *containerActor) enqueue(ctx actor.Context, run func()) {
	a.rec.work = append(a.rec.work, work{msg: ctx.Message(), replyTo: ctx.Sender(), run: run})
	if !a.rec.busy {
		a.next()
	}
}

// next starts the next piece of queued work, if any. Every piece ends by
// sending a *Finished message whose handler calls next.
func (a *containerActor) next() {
	if len(a.rec.work) == 0 {
		a.rec.busy = false
		return
	}
	w := a.rec.work[0]
	a.rec.work = a.rec.work[1:]
	a.rec.busy = true
	go w.run()
}

// opContext bounds one runtime operation.
func (a *containerActor) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.deps.timeout)
}

func (a *containerActor) start(ctx actor.Context, msg *StartContainer) {
	if a.rec.startReply != nil || a.rec.busy {
		a.refuse(ctx, "is starting")
		return
	}
	a.rec.startReply = ctx.Sender()
	self, root, rt, adm := ctx.Self(), ctx.ActorSystem().Root, a.deps.runtime, a.deps.admission
	id, bundle, store := a.rec.id, a.rec.bundlePath, a.deps.checkpoints
	from, name, pool, logLimits := a.rec.restoreFrom, a.rec.restoreName, a.rec.pool, a.rec.log
	a.enqueue(ctx, func() {
		ctx, cancel := a.opContext()
		defer cancel()
		if pool != nil {
			t0 := time.Now()
			if c, ok, err := claimWarm(ctx, pool, id); ok {
				root.Send(self, &containerStartFinished{container: c, started: time.Since(t0), warm: err == nil, err: err})
				return
			}
		}
		opts := runtime.StartOptions{BundlePath: bundle, Log: logLimits}
		if name != "" {
			cp, images, err := store.Get(from, name)
			if err != nil {
				root.Send(self, &containerStartFinished{err: fmt.Errorf("restore container %q: %w", id, err)})
				return
			}
			if opts.BundlePath == "" {
				opts.BundlePath = cp.BundlePath
			}
			opts.Restore = &runtime.RestoreOptions{ImagesDir: images, TCP: cp.TCP, UnixSockets: cp.UnixSockets, Shell: cp.Shell}
		}
		// The bundle is read and checked before the start takes a slot: a
		// bad one is refused without waiting for one, and file I/O that is
		// slow (or a config.json that is not a file) holds up no other start.
		if err := rt.Check(ctx, id, opts); err != nil {
			root.Send(self, &containerStartFinished{err: err})
			return
		}
		queued, err := adm.acquire(ctx)
		if err != nil {
			root.Send(self, &containerStartFinished{queued: queued, err: fmt.Errorf("start container %q: waiting for admission: %w", id, err)})
			return
		}
		t0 := time.Now()
		c, err := rt.Start(ctx, id, opts)
		adm.release()
		root.Send(self, &containerStartFinished{container: c, queued: queued, started: time.Since(t0), restored: opts.Restore != nil, err: err})
	})
}

func (a *containerActor) startFinished(ctx actor.Context, msg *containerStartFinished) {
	a.rec.busy = false
	if msg.err != nil {
		a.log.Info("start failed", "err", msg.err)
		a.remove(ctx, a.rec.startReply, &StartContainerResult{Queued: msg.queued, Err: msg.err})
		return
	}
	if msg.container.BundlePath() != "" {
		a.rec.bundlePath = msg.container.BundlePath()
	}
	a.rec.warm, a.rec.pool = msg.warm, nil
	a.adopt(ctx, msg.container, msg.adopted)
	kind := api.EventStart
	if msg.restored {
		kind = api.EventRestore
	}
	a.publish(api.Event{Type: kind, Pid: msg.container.Init().Pid()})
	a.changed(ctx, a.rec.startReply, &StartContainerResult{Container: a.info(), Queued: msg.queued, Started: msg.started})
	a.rec.startReply = nil
	a.next()
}

// forget drops what a stopped actor holds of its container. A stopped
// actor can stay reachable for a while: protoactor's PIDSet of a parent's
// children leaves removed *PIDs (which cache their process, and so the
// actor) in its backing array, up to the peak number of children. Without
// this each of those would also keep its container's runtime and
// libcontainer state, about 8 KiB.
func (a *containerActor) forget() {
	a.rec.ctr, a.rec.procs, a.rec.work, a.rec.pool, a.rec.startReply = nil, nil, nil, nil, nil
}

// adopt takes charge of a started container, or of one an earlier daemon
// started (loaded): one goroutine reports the init's exit and the OOM kills.
func (a *containerActor) adopt(ctx actor.Context, c runtime.Container, loaded bool) {
	a.rec.ctr = c
	a.rec.procs = []runtime.Process{c.Init()}
	// A container just started runs: asking libcontainer (which refreshes
	// its whole state) is paid only for one found paused or stopped.
	status := runtime.Running
	if loaded {
		if s, err := c.Status(); err == nil && s != runtime.Created {
			status = s
		}
	}
	a.rec.status = status
	a.become()
	oom, err := c.NotifyOOM()
	if err != nil {
		oom = nil // no OOM events, the exit still comes
	}
	self, root, init := ctx.Self(), ctx.ActorSystem().Root, c.Init()
	go func() {
		for {
			select {
			case _, ok := <-oom:
				if !ok {
					oom = nil
					continue
				}
				root.Send(self, &oomKilled{})
			case <-init.Done():
				// An OOM kill of the init itself comes before its exit.
				select {
				case _, ok := <-oom:
					if ok {
						root.Send(self, &oomKilled{})
					}
				default:
				}
				st, _ := init.Wait(context.Background())
				root.Send(self, &processExited{pid: init.Pid(), status: st})
				return
			}
		}
	}()
}

// watch reports the exit of an exec'd process to the actor once it is
// reaped; an exit that comes before anyone asks is not lost, since the
// runtime keeps it.
func (a *containerActor) watch(ctx actor.Context, p runtime.Process) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		st, _ := p.Wait(context.Background())
		root.Send(self, &processExited{pid: p.Pid(), status: st})
	}()
}

func (a *containerActor) processExited(ctx actor.Context, pid int, st runtime.ExitStatus) {
	i := a.procIndex(pid)
	if i < 0 {
		return // already accounted for
	}
	if a.rec.ctr != nil && pid == a.rec.ctr.Init().Pid() && a.rec.exit == nil {
		code := st.Code
		a.rec.exit = &st
		a.rec.status = runtime.Stopped
		// The kernel kills the rest of the pid namespace with its init; their
		// own exits still come, each as a process-exit event.
		for _, p := range a.rec.procs[1:] {
			a.publish(api.Event{Type: api.EventProcessExit, Pid: p.Pid(), ExitStatus: exitCode(p)})
		}
		a.rec.procs = nil
		a.publish(api.Event{Type: api.EventExit, Pid: pid, ExitStatus: &code})
		a.become()
		a.changed(ctx, nil, nil)
		return
	}
	code := st.Code
	a.rec.procs = append(a.rec.procs[:i:i], a.rec.procs[i+1:]...)
	a.publish(api.Event{Type: api.EventProcessExit, Pid: pid, ExitStatus: &code})
	a.changed(ctx, nil, nil)
}

// exitCode is p's exit code if it has exited (its waiter message may still
// be on the way), else nil.
func exitCode(p runtime.Process) *int {
	select {
	case <-p.Done():
		st, _ := p.Wait(context.Background())
		return &st.Code
	default:
		return nil
	}
}

func (a *containerActor) procIndex(pid int) int {
	for i, p := range a.rec.procs {
		if p.Pid() == pid {
			return i
		}
	}
	return -1
}

func (a *containerActor) exec(ctx actor.Context, msg *ExecProcess) {
	if err := msg.Process.Validate(); err != nil {
		ctx.Respond(&ExecProcessResult{Err: fmt.Errorf("exec in container %q: %w", a.rec.id, err)})
		return
	}
	self, root, c, replyTo, spec := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Process
	a.enqueue(ctx, func() {
		ctx, cancel := a.opContext()
		defer cancel()
		p, err := c.Exec(ctx, spec)
		root.Send(self, &execFinished{replyTo: replyTo, process: p, err: err})
	})
}

func (a *containerActor) execFinished(ctx actor.Context, msg *execFinished) {
	defer a.next()
	if msg.err != nil {
		ctx.Send(msg.replyTo, &ExecProcessResult{Err: msg.err})
		return
	}
	a.watch(ctx, msg.process)
	info := processInfo(msg.process)
	if a.rec.status == runtime.Stopped {
		ctx.Send(msg.replyTo, &ExecProcessResult{Process: info})
		return
	}
	a.rec.procs = append(a.rec.procs, msg.process)
	a.publish(api.Event{Type: api.EventExec, Pid: info.Pid})
	a.changed(ctx, msg.replyTo, &ExecProcessResult{Process: info})
}

func (a *containerActor) signal(pid int, sig syscall.Signal) error {
	if sig < 0 || sig > maxSignal {
		return fmt.Errorf("signal %d: not a signal (0 to %d): %w", sig, maxSignal, runtime.ErrInvalidArgument)
	}
	return a.rec.ctr.Signal(pid, sig)
}

// maxSignal is the highest real-time signal on Linux.
const maxSignal = 64

func (a *containerActor) pause(ctx actor.Context, pause bool) {
	self, root, c, replyTo := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender()
	a.enqueue(ctx, func() {
		// A pause queued behind another pause finds the container paused
		// already: that is success, not an error.
		s, err := c.Status()
		switch {
		case err != nil:
		case pause && s == runtime.Paused, !pause && s == runtime.Running:
		case pause:
			err = c.Pause()
		default:
			err = c.Resume()
		}
		root.Send(self, &pauseFinished{replyTo: replyTo, pause: pause, err: err})
	})
}

func (a *containerActor) pauseFinished(ctx actor.Context, msg *pauseFinished) {
	defer a.next()
	if msg.err == nil && a.rec.status != runtime.Stopped {
		if msg.pause {
			a.rec.status = runtime.Paused
			a.publish(api.Event{Type: api.EventPause})
		} else {
			a.rec.status = runtime.Running
			a.publish(api.Event{Type: api.EventResume})
		}
		a.become()
	}
	var reply any = &ResumeContainerResult{Container: a.info(), Err: msg.err}
	if msg.pause {
		reply = &PauseContainerResult{Container: a.info(), Err: msg.err}
	}
	a.changed(ctx, msg.replyTo, reply)
}

func (a *containerActor) update(ctx actor.Context, msg *UpdateResources) {
	self, root, c, replyTo, res := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Resources
	a.enqueue(ctx, func() {
		root.Send(self, &updateFinished{replyTo: replyTo, err: c.Update(res)})
	})
}

func (a *containerActor) stats(ctx actor.Context) {
	if a.rec.ctr == nil || a.rec.status == runtime.Stopped {
		a.refuse(ctx, "is not running")
		return
	}
	// Reading cgroup files blocks but changes nothing: it needs no turn in
	// the queue, and the answer goes straight to the asker.
	root, c, replyTo := ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender()
	go func() {
		s, err := c.Stats()
		root.Send(replyTo, &GetStatsResult{Stats: s, Err: err})
	}()
}

func (a *containerActor) checkpoint(ctx actor.Context, msg *CheckpointContainer) {
	store := a.deps.checkpoints
	if store == nil {
		ctx.Respond(&CheckpointContainerResult{Err: errNoCheckpoints})
		return
	}
	if err := a.deps.criuUnusable(); err != nil {
		ctx.Respond(&CheckpointContainerResult{Err: err})
		return
	}
	self, root, c, replyTo := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender()
	id, name, o, bundle := a.rec.id, msg.Name, msg.Options, a.rec.bundlePath
	a.enqueue(ctx, func() {
		ctx, cancel := a.opContext()
		defer cancel()
		images, err := store.Reserve(id, name)
		if err == nil {
			if err = c.Checkpoint(ctx, images, o); err != nil {
				store.Abandon(id, name)
			}
		}
		cp := checkpoint.Checkpoint{Name: name, TCP: o.TCP, UnixSockets: o.UnixSockets, Shell: o.Shell,
			Exit: o.Exit, Created: time.Now(), Container: id, BundlePath: bundle}
		if err == nil {
			if err = store.Commit(id, cp); err != nil {
				store.Abandon(id, name)
			}
		}
		root.Send(self, &checkpointFinished{replyTo: replyTo, checkpoint: cp, err: err})
	})
}

func (a *containerActor) checkpointFinished(ctx actor.Context, msg *checkpointFinished) {
	defer a.next()
	if msg.err != nil {
		ctx.Send(msg.replyTo, &CheckpointContainerResult{Err: msg.err})
		return
	}
	a.publish(api.Event{Type: api.EventCheckpoint})
	// With Exit the init is gone or going; its waiter reports the exit.
	ctx.Send(msg.replyTo, &CheckpointContainerResult{Checkpoint: msg.checkpoint})
}

func (a *containerActor) delete(ctx actor.Context, msg *DeleteContainer) {
	if a.rec.status != runtime.Stopped && !msg.Force {
		a.refuse(ctx, fmt.Sprintf("is %s (delete it with force to kill it)", a.rec.status))
		return
	}
	self, root, c, replyTo, force := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Force
	a.enqueue(ctx, func() {
		ctx, cancel := a.opContext()
		defer cancel()
		root.Send(self, &deleteFinished{replyTo: replyTo, err: c.Delete(ctx, force)})
	})
}

func (a *containerActor) deleteFinished(ctx actor.Context, msg *deleteFinished) {
	if msg.err != nil {
		ctx.Send(msg.replyTo, &DeleteContainerResult{Err: msg.err})
		a.next()
		return
	}
	// Delete waited for every process; their exits may still be on the way
	// in the mailbox, which dies with the actor. Account for them now so no
	// exit event is lost.
	for _, p := range append([]runtime.Process(nil), a.rec.procs...) {
		if st, err := p.Wait(context.Background()); err == nil {
			a.processExited(ctx, p.Pid(), st)
		}
	}
	a.publish(api.Event{Type: api.EventDelete})
	a.remove(ctx, msg.replyTo, &DeleteContainerResult{})
}

// remove hands the actor's end to the supervisor, which stops it and sends
// the reply once it has stopped and its name is free. The supervisor, not
// the actor, stops it: a stop is a system message, which overtakes user
// messages, so the supervisor could otherwise learn of the end before it
// knew whom to answer.
func (a *containerActor) remove(ctx actor.Context, replyTo *actor.PID, reply any) {
	a.rec.removing = true
	gone := fmt.Errorf("container %q: %w", a.rec.id, runtime.ErrNotFound)
	for _, w := range a.rec.work {
		if r, ok := failedResult(w.msg, gone); ok && w.replyTo != nil {
			ctx.Send(w.replyTo, r)
		}
	}
	a.rec.work = nil
	ctx.Send(ctx.Parent(), &ContainerRemoved{ID: a.rec.id, ReplyTo: replyTo, Reply: reply})
}

// changed tells the supervisor the container's new view. A reply to the
// command that made the change goes through the supervisor, after the books:
// a client that got it and then reads the state sees its own change.
func (a *containerActor) changed(ctx actor.Context, replyTo *actor.PID, reply any) {
	ctx.Send(ctx.Parent(), &ContainerChanged{Container: a.info(), ReplyTo: replyTo, Reply: reply})
}

// info builds a fresh view of the container.
func (a *containerActor) info() api.Container {
	status := a.rec.status
	if status == "" {
		status = runtime.Created
	}
	c := api.Container{ID: a.rec.id, BundlePath: a.rec.bundlePath, Created: a.rec.created, Warm: a.rec.warm,
		State: api.ContainerState{Status: api.Status(status)}, Processes: make([]api.Process, 0, len(a.rec.procs))}
	if a.rec.exit != nil {
		code := a.rec.exit.Code
		c.State.ExitStatus = &code
	}
	for _, p := range a.rec.procs {
		c.Processes = append(c.Processes, processInfo(p))
	}
	return c
}

func (a *containerActor) publish(e api.Event) {
	e.Container = a.rec.id
	a.deps.events.Publish(e)
}

// failedResult is the reply of the right type for a command that failed
// with err before reaching the runtime.
func failedResult(msg any, err error) (any, bool) {
	switch msg.(type) {
	case *StartContainer:
		return &StartContainerResult{Err: err}, true
	case *GetContainer:
		return &GetContainerResult{Err: err}, true
	case *ExecProcess:
		return &ExecProcessResult{Err: err}, true
	case *SignalProcess:
		return &SignalProcessResult{Err: err}, true
	case *SignalContainer:
		return &SignalContainerResult{Err: err}, true
	case *PauseContainer:
		return &PauseContainerResult{Err: err}, true
	case *ResumeContainer:
		return &ResumeContainerResult{Err: err}, true
	case *UpdateResources:
		return &UpdateResourcesResult{Err: err}, true
	case *GetStats:
		return &GetStatsResult{Err: err}, true
	case *DeleteContainer:
		return &DeleteContainerResult{Err: err}, true
	case *CheckpointContainer:
		return &CheckpointContainerResult{Err: err}, true
	}
	return nil, false
}
