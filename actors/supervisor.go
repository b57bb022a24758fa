package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
)

// StartsPerCPU sets the default bound on starts in flight: this many per
// usable CPU. A start is CPU-bound (cgroup v1 attach, mounts, the init's Go
// runtime). Measured with BenchmarkStartBurst (bursts of 100 busybox
// containers, 2 CPUs, 2 runs of 5): at most 1 in flight 43/s, 2 66/s,
// 4 78-88/s, 8 78-90/s, 16 77-83/s, 64 76/s with the median wait doubling.
// 4 on 2 CPUs is at the top of the curve with the least queueing inside the
// kernel.
const StartsPerCPU = 2

// DefaultMaxStarts is the default bound on starts in flight on this machine.
func DefaultMaxStarts() int { return StartsPerCPU * goruntime.GOMAXPROCS(0) }

// DefaultName is the supervisor's actor name.
const DefaultName = "troupe"

// Config configures a supervisor.
type Config struct {
	// Runtime makes the containers; required.
	Runtime runtime.Runtime
	// Events receives every lifecycle event; nil makes a new log.
	Events *events.Log
	// MaxStarts bounds the starts in flight; 0 means DefaultMaxStarts().
	MaxStarts int
	// Name is the supervisor's actor name; "" means DefaultName.
	Name string
	// Logger logs with each container's id; nil means slog.Default().
	Logger *slog.Logger
	// OpTimeout bounds one runtime operation (a start counts its wait for
	// admission); 0 means 10 minutes.
	OpTimeout time.Duration
	// Adopt re-adopts the containers the runtime already has (those an
	// earlier daemon started) before Spawn returns.
	Adopt bool
	// Checkpoints is where checkpoints are kept; nil makes checkpoint
	// commands answer errclass.Unavailable.
	Checkpoints *checkpoint.Store
	// Criu, when set, is asked at each checkpoint and restore request
	// whether CRIU can be used now: nil, or why not (no CRIU, one that
	// failed its self-test, or one still being tested), which the request
	// answers. Listing and deleting checkpoints always work. Unset means
	// CRIU is usable.
	Criu func() error
	// Images, when set, lets containers start from images, and the image
	// requests work; nil makes them answer errclass.Unavailable.
	Images *Images
}

// Supervisor is a handle on a running supervisor actor (supervisor_actor.go)
// and the actors beside it: its PID for programs that send messages
// themselves, typed request methods that block until the reply for those
// that prefer calls, and the state snapshot, readable without a message.
// The handle holds no state of its own; every method goes through the
// actors, checkpoint streams through a lease from the store's owner.
type Supervisor struct {
	deps    *deps
	pid     *actor.PID
	root    *actor.RootContext
	state   *atomic.Pointer[State]
	events  *events.Log
	timeout time.Duration
}

// Spawn starts a supervisor in root's actor system.
func Spawn(root *actor.RootContext, cfg Config) (*Supervisor, error) {
	if cfg.Runtime == nil {
		return nil, fmt.Errorf("actors: a runtime is required: %w", errclass.InvalidArgument)
	}
	if cfg.Events == nil {
		cfg.Events = events.New(events.Options{})
	}
	if cfg.MaxStarts == 0 {
		cfg.MaxStarts = DefaultMaxStarts()
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 10 * time.Minute
	}
	prep, _ := cfg.Runtime.(runtime.Preparer)
	d := &deps{runtime: cfg.Runtime, preparer: prep, pools: newPoolBook(), criuErr: cfg.Criu, events: cfg.Events, images: cfg.Images,
		admission: newAdmission(cfg.MaxStarts), logger: cfg.Logger, timeout: cfg.OpTimeout}
	// The pools actor and the checkpoint store's owner are the
	// supervisor's siblings, spawned first: the supervisor and the
	// container actors find them in deps from their first message on.
	d.poolsPID = root.SpawnPrefix(newPoolsProps(d), cfg.Name+"-pools")
	if cfg.Checkpoints != nil {
		d.checkpoints = &checkpoints{owner: root.SpawnPrefix(newCheckpointOwnerProps(cfg.Checkpoints), cfg.Name+"-checkpoints"), root: root}
	}
	state := &atomic.Pointer[State]{}
	state.Store(&State{})
	pid, err := root.SpawnNamed(newSupervisorProps(d, state), cfg.Name)
	s := &Supervisor{deps: d, pid: pid, root: root, state: state, events: cfg.Events, timeout: cfg.OpTimeout + time.Minute}
	if err != nil {
		s.stopHelpers()
		return nil, fmt.Errorf("actors: spawn supervisor %q: %w", cfg.Name, err)
	}
	if cfg.Adopt {
		if err := s.adopt(cfg.Runtime); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// adopt loads what the runtime has and waits until the supervisor has
// spawned an actor for each, so the first State already lists them.
func (s *Supervisor) adopt(rt runtime.Runtime) error {
	ctx := context.Background()
	ids, err := rt.List(ctx)
	if err != nil {
		return fmt.Errorf("actors: re-adopt containers: %w", err)
	}
	found := &containersFound{}
	for _, id := range ids {
		c, err := rt.Load(ctx, id)
		if err != nil {
			found.errs = append(found.errs, err)
			continue
		}
		found.containers = append(found.containers, c)
	}
	st, err := ask[*GetStateResult](s, ctx, s.pid, found)
	if err != nil {
		return err
	}
	s.removeOrphanRoots(st.State)
	return nil
}

// removeOrphanRoots removes the image roots whose container the runtime no
// longer has: a daemon died between a container's deletion (or a failed
// start) and the removal of its root.
func (s *Supervisor) removeOrphanRoots(st *State) {
	if s.deps.images == nil {
		return
	}
	ids, err := s.deps.images.Store.Mounted()
	if err != nil {
		s.deps.logger.Warn("cannot list the containers' roots", "err", err)
		return
	}
	for _, id := range ids {
		if _, ok := st.Get(id); ok {
			continue
		}
		if err := s.deps.images.Store.Unmount(id); err != nil {
			s.deps.logger.Warn("cannot remove the root of a container that is gone", "id", id, "err", err)
			continue
		}
		s.deps.logger.Info("removed the root of a container that is gone", "id", id)
	}
}

// PID is the supervisor's address: send it StartContainer, GetState, and
// any container command (it forwards them).
func (s *Supervisor) PID() *actor.PID { return s.pid }

// ContainerPID is the address of container id's actor. Requests sent there
// skip the supervisor; if the container does not exist they come back as
// dead letters.
func (s *Supervisor) ContainerPID(id string) *actor.PID {
	return actor.NewPID(s.pid.Address, s.pid.Id+"/"+id)
}

// State returns the current snapshot of every container. It never waits.
func (s *Supervisor) State() *State { return s.state.Load() }

// Events returns the log every lifecycle event goes to.
func (s *Supervisor) Events() *events.Log { return s.events }

// Stop stops the supervisor and its actors, then the warm pools (their
// prepared containers are discarded) and the checkpoint store's owner.
// Containers keep running; a new supervisor with Adopt takes them over.
func (s *Supervisor) Stop() error {
	err := s.root.StopFuture(s.pid).Wait()
	return errors.Join(err, s.stopHelpers())
}

// stopHelpers stops the supervisor's siblings.
func (s *Supervisor) stopHelpers() error {
	err := s.root.StopFuture(s.deps.poolsPID).Wait()
	if s.deps.checkpoints != nil {
		err = errors.Join(err, s.root.StopFuture(s.deps.checkpoints.owner).Wait())
	}
	return err
}

// Start creates and starts container id from the bundle at bundlePath.
func (s *Supervisor) Start(ctx context.Context, id, bundlePath string) (*StartContainerResult, error) {
	return s.StartContainer(ctx, StartContainer{ID: id, BundlePath: bundlePath})
}

// StartContainer starts a container as m says: from a bundle, or from a
// checkpoint, with limits of its own on its log.
func (s *Supervisor) StartContainer(ctx context.Context, m StartContainer) (*StartContainerResult, error) {
	r, err := ask[*StartContainerResult](s, ctx, s.pid, &m)
	if err != nil {
		return nil, err
	}
	return r, r.Err
}

// Restore creates container id from a checkpoint: "name" (its own) or
// "other/name" (a clone of another container). An empty bundlePath uses the
// checkpointed container's bundle.
func (s *Supervisor) Restore(ctx context.Context, id, bundlePath, checkpoint string) (*StartContainerResult, error) {
	return s.StartContainer(ctx, StartContainer{ID: id, BundlePath: bundlePath, Checkpoint: checkpoint})
}

// Checkpoint dumps container id into checkpoint name.
func (s *Supervisor) Checkpoint(ctx context.Context, id, name string, o runtime.CheckpointOptions) (api.Checkpoint, error) {
	if err := runtime.ValidID("checkpoint name", name); err != nil {
		return api.Checkpoint{}, err
	}
	r, err := askContainer[*CheckpointContainerResult](s, ctx, id, &CheckpointContainer{ID: id, Name: name, Options: o})
	if err != nil {
		return api.Checkpoint{}, err
	}
	return checkpointInfo(r.Checkpoint), r.Err
}

// Checkpoints lists the checkpoints of container id (which need not exist).
func (s *Supervisor) Checkpoints(ctx context.Context, id string) ([]api.Checkpoint, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	r, err := ask[*ListCheckpointsResult](s, ctx, s.pid, &ListCheckpoints{ID: id})
	if err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	list := make([]api.Checkpoint, 0, len(r.Checkpoints))
	for _, cp := range r.Checkpoints {
		list = append(list, checkpointInfo(cp))
	}
	return list, nil
}

// DeleteCheckpoint removes checkpoint name of container id.
func (s *Supervisor) DeleteCheckpoint(ctx context.Context, id, name string) error {
	if err := validCheckpoint(id, name); err != nil {
		return err
	}
	r, err := ask[*DeleteCheckpointResult](s, ctx, s.pid, &DeleteCheckpoint{ID: id, Name: name})
	if err != nil {
		return err
	}
	return r.Err
}

// ExportCheckpoint writes checkpoint id/name to w as a tar archive. The
// stream runs in the caller's goroutine, under a read lease from the
// checkpoint store's owner: no mailbox waits for it, and the checkpoint
// cannot be deleted until it is done.
func (s *Supervisor) ExportCheckpoint(ctx context.Context, id, name string, w io.Writer) error {
	if err := validCheckpoint(id, name); err != nil {
		return err
	}
	lease, err := s.deps.checkpoints.lease(ctx, id, name, useRead)
	if err != nil {
		return err
	}
	defer lease.release()
	return lease.export(w)
}

// ImportCheckpoint reads a tar archive made by ExportCheckpoint (here or on
// another daemon) into the new checkpoint id/name; maxBytes bounds its
// content. Like an export it streams in the caller's goroutine, under a
// write lease.
func (s *Supervisor) ImportCheckpoint(ctx context.Context, id, name string, r io.Reader, maxBytes int64) (api.Checkpoint, error) {
	if err := validCheckpoint(id, name); err != nil {
		return api.Checkpoint{}, err
	}
	lease, err := s.deps.checkpoints.lease(ctx, id, name, useWrite)
	if err != nil {
		return api.Checkpoint{}, err
	}
	cp, err := lease.importFrom(r, maxBytes)
	// Released before the answer: its caller may delete it at once.
	lease.release()
	return checkpointInfo(cp), err
}

// validCheckpoint checks a checkpoint's container id and name.
func validCheckpoint(id, name string) error {
	if err := runtime.ValidID("container id", id); err != nil {
		return err
	}
	return runtime.ValidID("checkpoint name", name)
}

// Get returns container id's current view from its actor.
func (s *Supervisor) Get(ctx context.Context, id string) (api.Container, error) {
	r, err := askContainer[*GetContainerResult](s, ctx, id, &GetContainer{ID: id})
	if err != nil {
		return api.Container{}, err
	}
	return r.Container, r.Err
}

// LogPath returns the file that holds container id's log.
func (s *Supervisor) LogPath(ctx context.Context, id string) (string, error) {
	r, err := askContainer[*GetContainerResult](s, ctx, id, &GetContainer{ID: id})
	if err != nil {
		return "", err
	}
	return r.LogPath, r.Err
}

// Exec starts a process in container id.
func (s *Supervisor) Exec(ctx context.Context, id string, p runtime.ProcessSpec) (api.Process, error) {
	r, err := askContainer[*ExecProcessResult](s, ctx, id, &ExecProcess{ID: id, Process: p})
	if err != nil {
		return api.Process{}, err
	}
	return r.Process, r.Err
}

// ExecStdio starts a process in container id whose stdio the daemon keeps
// for clients to attach to (Attach), as o says.
func (s *Supervisor) ExecStdio(ctx context.Context, id string, p runtime.ProcessSpec, o stdio.Options) (api.Process, error) {
	r, err := askContainer[*ExecProcessResult](s, ctx, id, &ExecProcess{ID: id, Process: p, Stdio: &o})
	if err != nil {
		return api.Process{}, err
	}
	return r.Process, r.Err
}

// Attached is what a client attaches to: the stdio the daemon keeps of a
// process (attach with Session.Attach), or, for a container's init, whose
// output goes to its log, that log (InitLog) to follow.
type Attached struct {
	Session *stdio.Session
	InitLog string
}

// Attach returns what a client of process pid of container id attaches to.
func (s *Supervisor) Attach(ctx context.Context, id string, pid int) (Attached, error) {
	r, err := askContainer[*AttachProcessResult](s, ctx, id, &AttachProcess{ID: id, Pid: pid})
	if err != nil {
		return Attached{}, err
	}
	return Attached{Session: r.Session, InitLog: r.InitLog}, r.Err
}

// Wait waits (until ctx ends) for process pid of container id, its init's
// or an exec'd one, to exit, and returns how it ended.
func (s *Supervisor) Wait(ctx context.Context, id string, pid int) (runtime.ExitStatus, error) {
	r, err := askContainer[*WaitProcessResult](s, ctx, id, &WaitProcess{ID: id, Pid: pid})
	if err != nil {
		return runtime.ExitStatus{}, err
	}
	if r.Err != nil {
		return runtime.ExitStatus{}, r.Err
	}
	if r.Exit != nil {
		return *r.Exit, nil
	}
	return r.Process.Wait(ctx)
}

// Signal sends sig to process pid of container id.
func (s *Supervisor) Signal(ctx context.Context, id string, pid int, sig syscall.Signal) error {
	r, err := askContainer[*SignalProcessResult](s, ctx, id, &SignalProcess{ID: id, Pid: pid, Signal: sig})
	if err != nil {
		return err
	}
	return r.Err
}

// Kill sends sig to container id's init.
func (s *Supervisor) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	r, err := askContainer[*SignalContainerResult](s, ctx, id, &SignalContainer{ID: id, Signal: sig})
	if err != nil {
		return err
	}
	return r.Err
}

// Pause freezes container id.
func (s *Supervisor) Pause(ctx context.Context, id string) (api.Container, error) {
	r, err := askContainer[*PauseContainerResult](s, ctx, id, &PauseContainer{ID: id})
	if err != nil {
		return api.Container{}, err
	}
	return r.Container, r.Err
}

// Resume thaws container id.
func (s *Supervisor) Resume(ctx context.Context, id string) (api.Container, error) {
	r, err := askContainer[*ResumeContainerResult](s, ctx, id, &ResumeContainer{ID: id})
	if err != nil {
		return api.Container{}, err
	}
	return r.Container, r.Err
}

// Update changes the resource limits of container id.
func (s *Supervisor) Update(ctx context.Context, id string, res runtime.Resources) error {
	r, err := askContainer[*UpdateResourcesResult](s, ctx, id, &UpdateResources{ID: id, Resources: res})
	if err != nil {
		return err
	}
	return r.Err
}

// Stats returns container id's cgroup figures.
func (s *Supervisor) Stats(ctx context.Context, id string) (api.Stats, error) {
	r, err := askContainer[*GetStatsResult](s, ctx, id, &GetStats{ID: id})
	if err != nil {
		return api.Stats{}, err
	}
	if r.Err != nil {
		return api.Stats{}, r.Err
	}
	return api.Stats(*r.Stats), nil
}

// Delete removes container id; force kills it first if it runs.
func (s *Supervisor) Delete(ctx context.Context, id string, force bool) error {
	r, err := askContainer[*DeleteContainerResult](s, ctx, id, &DeleteContainer{ID: id, Force: force})
	if err != nil {
		return err
	}
	return r.Err
}

// askContainer sends msg straight to container id's actor.
func askContainer[R any](s *Supervisor, ctx context.Context, id string, msg any) (R, error) {
	var zero R
	if err := runtime.ValidID("container id", id); err != nil {
		return zero, err
	}
	r, err := ask[R](s, ctx, s.ContainerPID(id), msg)
	if errors.Is(err, actor.ErrDeadLetter) {
		if c, ok := s.State().Get(id); ok && c.State.Error != "" {
			return zero, fmt.Errorf("container %q: %s: %w", id, c.State.Error, errclass.Unavailable)
		}
		return zero, fmt.Errorf("container %q: %w", id, errclass.NotFound)
	}
	return r, err
}

// ask sends msg to pid and waits for a reply of type R, for as long as ctx
// allows (and at most the supervisor's timeout).
func ask[R any](s *Supervisor, ctx context.Context, pid *actor.PID, msg any) (R, error) {
	var zero R
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return zero, ctx.Err()
	}
	future := s.root.RequestFuture(pid, msg, timeout)
	type outcome struct {
		res any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := future.Result()
		done <- outcome{res, err}
	}()
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case o := <-done:
		if o.err != nil {
			if errors.Is(o.err, actor.ErrTimeout) {
				return zero, fmt.Errorf("%T: no reply within %v: %w", msg, timeout, context.DeadlineExceeded)
			}
			return zero, o.err
		}
		r, ok := o.res.(R)
		if !ok {
			return zero, fmt.Errorf("%T: unexpected reply %T", msg, o.res)
		}
		return r, nil
	}
}

// SetPool creates warm pool name for the bundle, or resizes it (bundlePath
// may then be empty). created says the pool is new.
func (s *Supervisor) SetPool(ctx context.Context, name, bundlePath string, size int) (p api.Pool, created bool, err error) {
	r, err := ask[*SetPoolResult](s, ctx, s.pid, &SetPool{Name: name, BundlePath: bundlePath, Size: size})
	if err != nil {
		return api.Pool{}, false, err
	}
	return r.Pool, r.Created, r.Err
}

// Pool returns warm pool name.
func (s *Supervisor) Pool(ctx context.Context, name string) (api.Pool, error) {
	r, err := ask[*GetPoolResult](s, ctx, s.pid, &GetPool{Name: name})
	if err != nil {
		return api.Pool{}, err
	}
	return r.Pool, r.Err
}

// Pools returns every warm pool, sorted by name.
func (s *Supervisor) Pools(ctx context.Context) ([]api.Pool, error) {
	r, err := ask[*ListPoolsResult](s, ctx, s.pid, &ListPools{})
	if err != nil {
		return nil, err
	}
	return r.Pools, nil
}

// DeletePool removes warm pool name once its prepared containers are gone.
func (s *Supervisor) DeletePool(ctx context.Context, name string) error {
	r, err := ask[*DeletePoolResult](s, ctx, s.pid, &DeletePool{Name: name})
	if err != nil {
		return err
	}
	return r.Err
}
