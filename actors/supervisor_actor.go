package actors

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// supervisorActor spawns one actor per container, named by its id, routes
// commands to them and keeps the books: the snapshot of every container,
// replaced on each change. It does no runtime work itself, so it never
// blocks behind a start.
type supervisorActor struct {
	deps     *deps
	state    *atomic.Pointer[State]
	children map[string]*actor.PID // by container id
	// removed holds the replies to deliver once a removed child has stopped.
	removed map[string]*ContainerRemoved
	// adopting are the ids re-adopted whose first view has not come yet;
	// adopted is told when none is left.
	adopting map[string]bool
	adopted  *actor.PID
	// stopping is set when the supervisor itself stops: its children stop
	// with it, which is no failure.
	stopping bool
	// pools are the warm pools by name and by bundle (poolKey);
	// poolDeletes are the replies owed once a deleted pool's actor stopped.
	pools       map[string]*warmPool
	poolsByKey  map[string]*warmPool
	poolDeletes map[string]*actor.PID // by pool actor id
}

func newSupervisorProps(d *deps, state *atomic.Pointer[State]) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{deps: d, state: state, children: make(map[string]*actor.PID),
			removed: make(map[string]*ContainerRemoved), pools: make(map[string]*warmPool),
			poolsByKey: make(map[string]*warmPool), poolDeletes: make(map[string]*actor.PID)}
	}, actor.WithSupervisor(containerSupervision()))
}

// containerCommand is a command addressed to one container.
type containerCommand interface {
	containerID() string
}

func (m *GetContainer) containerID() string        { return m.ID }
func (m *ExecProcess) containerID() string         { return m.ID }
func (m *SignalProcess) containerID() string       { return m.ID }
func (m *SignalContainer) containerID() string     { return m.ID }
func (m *PauseContainer) containerID() string      { return m.ID }
func (m *ResumeContainer) containerID() string     { return m.ID }
func (m *UpdateResources) containerID() string     { return m.ID }
func (m *GetStats) containerID() string            { return m.ID }
func (m *DeleteContainer) containerID() string     { return m.ID }
func (m *CheckpointContainer) containerID() string { return m.ID }

// Receive implements actor.Actor.
func (s *supervisorActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *StartContainer:
		s.start(ctx, msg)
	case *GetState:
		ctx.Respond(&GetStateResult{State: s.state.Load()})
	case *SetPool:
		s.setPool(ctx, msg)
	case *GetPool:
		if p, ok := s.pools[msg.Name]; ok {
			ctx.Respond(&GetPoolResult{Pool: p.info()})
		} else {
			ctx.Respond(&GetPoolResult{Err: poolNotFound(msg.Name)})
		}
	case *ListPools:
		s.listPools(ctx)
	case *DeletePool:
		s.deletePool(ctx, msg)
	case *ListCheckpoints:
		s.listCheckpoints(ctx, msg)
	case *DeleteCheckpoint:
		s.deleteCheckpoint(ctx, msg)
	case containerCommand:
		s.route(ctx, msg)
	case *ContainerChanged:
		c := msg.Container
		s.state.Store(s.state.Load().with(&c))
		if msg.ReplyTo != nil {
			ctx.Send(msg.ReplyTo, msg.Reply)
		}
		s.adoptionProgress(ctx, c.ID)
	case *ContainerRemoved:
		s.state.Store(s.state.Load().without(msg.ID))
		s.removed[msg.ID] = msg
		if pid, ok := s.children[msg.ID]; ok {
			ctx.Stop(pid)
		}
	case *containersFound:
		s.adopt(ctx, msg)
	case *actor.Stopping:
		s.stopping = true
	case *actor.Terminated:
		s.terminated(ctx, msg)
	}
}

func (s *supervisorActor) start(ctx actor.Context, msg *StartContainer) {
	if err := runtime.ValidID("container id", msg.ID); err != nil {
		ctx.Respond(&StartContainerResult{Err: err})
		return
	}
	if _, taken := s.children[msg.ID]; taken {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("container %q: %w", msg.ID, runtime.ErrAlreadyExists)})
		return
	}
	if _, unmanaged := s.state.Load().Get(msg.ID); unmanaged {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("container %q: %w", msg.ID, runtime.ErrAlreadyExists)})
		return
	}
	rec := &record{id: msg.ID, bundlePath: msg.BundlePath, created: time.Now(), log: msg.Log}
	if msg.Checkpoint != "" {
		from, name, err := parseCheckpointRef(msg.ID, msg.Checkpoint)
		if err == nil && s.deps.checkpoints == nil {
			err = errNoCheckpoints
		}
		if err == nil {
			err = s.deps.criuUnusable()
		}
		if err != nil {
			ctx.Respond(&StartContainerResult{Err: err})
			return
		}
		rec.restoreFrom, rec.restoreName = from, name
	} else if msg.BundlePath == "" {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("start container %q: a bundle path is required: %w", msg.ID, runtime.ErrInvalidArgument)})
		return
	} else if msg.Log == (containerlog.Limits{}) {
		rec.pool = s.poolsByKey[poolKey(msg.BundlePath)]
	}
	pid, err := s.spawn(ctx, rec)
	if err != nil {
		ctx.Respond(&StartContainerResult{Err: err})
		return
	}
	ctx.Forward(pid)
}

func (s *supervisorActor) spawn(ctx actor.Context, rec *record) (*actor.PID, error) {
	pid, err := ctx.SpawnNamed(newContainerProps(rec, s.deps), rec.id)
	if err != nil {
		return nil, fmt.Errorf("container %q: spawn actor: %v: %w", rec.id, err, runtime.ErrAlreadyExists)
	}
	s.children[rec.id] = pid
	return pid, nil
}

func (s *supervisorActor) route(ctx actor.Context, msg containerCommand) {
	if pid, ok := s.children[msg.containerID()]; ok {
		ctx.Forward(pid)
		return
	}
	if r, ok := failedResult(msg, s.missing(msg.containerID())); ok && ctx.Sender() != nil {
		ctx.Respond(r)
	}
}

// missing is the error for a container without an actor.
func (s *supervisorActor) missing(id string) error {
	if c, ok := s.state.Load().Get(id); ok && c.State.Error != "" {
		return fmt.Errorf("container %q: %s: %w", id, c.State.Error, runtime.ErrUnavailable)
	}
	return fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
}

// adopt spawns actors for the containers an earlier daemon left running, and
// answers once each has reported its first view: then the books list them.
func (s *supervisorActor) adopt(ctx actor.Context, msg *containersFound) {
	for _, err := range msg.errs {
		s.deps.logger.Warn("cannot re-adopt a container", "err", err)
	}
	s.adopting, s.adopted = make(map[string]bool), ctx.Sender()
	for _, c := range msg.containers {
		rec := &record{id: c.ID(), bundlePath: c.BundlePath(), created: time.Now(), status: runtime.Running}
		if _, err := s.spawn(ctx, rec); err != nil {
			s.deps.logger.Warn("cannot re-adopt a container", "id", c.ID(), "err", err)
			continue
		}
		s.adopting[rec.id] = true
		ctx.Send(s.children[rec.id], &containerStartFinished{container: c, adopted: true})
	}
	s.adoptionProgress(ctx, "")
}

func (s *supervisorActor) adoptionProgress(ctx actor.Context, id string) {
	if s.adopted == nil {
		return
	}
	delete(s.adopting, id)
	if len(s.adopting) == 0 {
		ctx.Send(s.adopted, &GetStateResult{State: s.state.Load()})
		s.adopted = nil
	}
}

func (s *supervisorActor) terminated(ctx actor.Context, msg *actor.Terminated) {
	if replyTo, ok := s.poolDeletes[msg.Who.Id]; ok {
		delete(s.poolDeletes, msg.Who.Id)
		ctx.Send(replyTo, &DeletePoolResult{})
		return
	}
	// A child's name is its container id (spawn).
	id, ok := strings.CutPrefix(msg.Who.Id, ctx.Self().Id+"/")
	if pid, known := s.children[id]; !ok || !known || !pid.Equal(msg.Who) {
		return
	}
	delete(s.children, id)
	if r, ok := s.removed[id]; ok {
		delete(s.removed, id)
		if r.ReplyTo != nil {
			ctx.Send(r.ReplyTo, r.Reply)
		}
		return
	}
	if s.stopping {
		return
	}
	// Stopped by supervision after repeated failures: the container stays
	// in the books, marked, with its processes left alone.
	s.deps.logger.Error("container actor stopped after repeated failures; container no longer managed", "id", id)
	if c, ok := s.state.Load().Get(id); ok {
		marked := *c
		marked.State.Error = "container actor failed repeatedly; the container is no longer managed"
		s.state.Store(s.state.Load().with(&marked))
	}
}

// errNoCheckpoints answers checkpoint commands of a supervisor without a
// checkpoint store.
var errNoCheckpoints = fmt.Errorf("checkpoint/restore is not available in this daemon: no checkpoint store: %w", runtime.ErrUnavailable)

// parseCheckpointRef splits "name" (a checkpoint of id itself) or
// "other/name" (another container's: a clone) and checks both parts.
func parseCheckpointRef(id, ref string) (from, name string, err error) {
	from, name = id, ref
	if before, after, ok := strings.Cut(ref, "/"); ok {
		from, name = before, after
		if err := runtime.ValidID("container id", from); err != nil {
			return "", "", fmt.Errorf("checkpoint %q: %w", ref, err)
		}
	}
	if err := runtime.ValidID("checkpoint name", name); err != nil {
		return "", "", fmt.Errorf("checkpoint %q: %w", ref, err)
	}
	return from, name, nil
}

// listCheckpoints reads the store off the mailbox and answers directly.
func (s *supervisorActor) listCheckpoints(ctx actor.Context, msg *ListCheckpoints) {
	root, replyTo, store := ctx.ActorSystem().Root, ctx.Sender(), s.deps.checkpoints
	if store == nil {
		ctx.Respond(&ListCheckpointsResult{Err: errNoCheckpoints})
		return
	}
	_, exists := s.children[msg.ID]
	go func() {
		list, err := store.List(msg.ID)
		// Checkpoints outlive their container, so an id without a
		// container may still have some; one with neither is unknown.
		if err == nil && len(list) == 0 && !exists {
			err = fmt.Errorf("container %q: no such container and no checkpoints of it: %w", msg.ID, runtime.ErrNotFound)
		}
		root.Send(replyTo, &ListCheckpointsResult{Checkpoints: list, Err: err})
	}()
}

func (s *supervisorActor) deleteCheckpoint(ctx actor.Context, msg *DeleteCheckpoint) {
	root, replyTo, store := ctx.ActorSystem().Root, ctx.Sender(), s.deps.checkpoints
	if store == nil {
		ctx.Respond(&DeleteCheckpointResult{Err: errNoCheckpoints})
		return
	}
	go func() {
		root.Send(replyTo, &DeleteCheckpointResult{Err: store.Delete(msg.ID, msg.Name)})
	}()
}
