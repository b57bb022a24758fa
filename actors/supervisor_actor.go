package actors

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// supervisorActor keeps the books: which actor runs which container (one
// child per container, named by its id), the snapshot of every container
// (replaced on each change), and the routing of commands to the container
// actors, the pools actor and the checkpoint store's owner. It does no
// runtime work itself, so it never blocks behind a start.
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
}

func newSupervisorProps(d *deps, state *atomic.Pointer[State]) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{deps: d, state: state, children: make(map[string]*actor.PID),
			removed: make(map[string]*ContainerRemoved)}
	}, actor.WithSupervisor(containerSupervision()))
}

// Receive implements actor.Actor.
func (s *supervisorActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *StartContainer:
		s.start(ctx, msg)
	case *GetState:
		ctx.Respond(&GetStateResult{State: s.state.Load()})
	case *SetPool, *GetPool, *ListPools, *DeletePool:
		ctx.Forward(s.deps.poolsPID)
	case *ListCheckpoints:
		s.listCheckpoints(ctx, msg)
	case *DeleteCheckpoint:
		s.deleteCheckpoint(ctx, msg)
	case command:
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
		ctx.Respond(msg.failed(err))
		return
	}
	if _, taken := s.children[msg.ID]; taken {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("container %q: %w", msg.ID, errclass.AlreadyExists)})
		return
	}
	if _, unmanaged := s.state.Load().Get(msg.ID); unmanaged {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("container %q: %w", msg.ID, errclass.AlreadyExists)})
		return
	}
	rec := &record{id: msg.ID, bundlePath: msg.BundlePath, created: time.Now(), log: msg.Log, initStdio: msg.Stdio, join: msg.Join}
	if err := s.checkJoin(msg); err != nil {
		ctx.Respond(&StartContainerResult{Err: err})
		return
	}
	if msg.Stdio != nil && msg.Checkpoint != "" {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("start container %q: a restore brings back the stdio it had: it takes no stdin nor terminal: %w", msg.ID, errclass.InvalidArgument)})
		return
	}
	if err := restorePullPolicy(msg); err != nil {
		ctx.Respond(&StartContainerResult{Err: err})
		return
	}
	if msg.Image != nil {
		var err error
		switch {
		case msg.BundlePath != "" || msg.Checkpoint != "":
			err = fmt.Errorf("start container %q: an image, or a bundle or checkpoint, not both: %w", msg.ID, errclass.InvalidArgument)
		case s.deps.images == nil:
			err = errNoImages
		case msg.Image.Ref == "":
			err = fmt.Errorf("start container %q: no image named: %w", msg.ID, errclass.InvalidArgument)
		}
		if err != nil {
			ctx.Respond(&StartContainerResult{Err: err})
			return
		}
		rec.fromImage = msg.Image
	} else if msg.Checkpoint != "" {
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
		rec.restoreFrom, rec.restoreName, rec.restorePull = from, name, msg.Pull
	} else if msg.BundlePath == "" {
		ctx.Respond(&StartContainerResult{Err: fmt.Errorf("start container %q: a bundle path is required: %w", msg.ID, errclass.InvalidArgument)})
		return
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
		return nil, fmt.Errorf("container %q: spawn actor: %v: %w", rec.id, err, errclass.AlreadyExists)
	}
	s.children[rec.id] = pid
	return pid, nil
}

// route forwards a command to its container's actor, or answers it.
func (s *supervisorActor) route(ctx actor.Context, msg command) {
	if pid, ok := s.children[msg.containerID()]; ok {
		ctx.Forward(pid)
		return
	}
	if ctx.Sender() != nil {
		ctx.Respond(msg.failed(s.missing(msg.containerID())))
	}
}

// missing is the error for a container without an actor.
func (s *supervisorActor) missing(id string) error {
	if c, ok := s.state.Load().Get(id); ok && c.State.Error != "" {
		return fmt.Errorf("container %q: %s: %w", id, c.State.Error, errclass.Unavailable)
	}
	return fmt.Errorf("container %q: %w", id, errclass.NotFound)
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
		if s.deps.images != nil {
			rec.image = s.deps.images.Store.MountedImage(c.ID())
		}
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

// listCheckpoints routes ListCheckpoints to the checkpoint store's owner
// with what only the books know: whether the container exists (its
// checkpoints may outlive it).
func (s *supervisorActor) listCheckpoints(ctx actor.Context, msg *ListCheckpoints) {
	if s.deps.checkpoints == nil {
		ctx.Respond(&ListCheckpointsResult{Err: errNoCheckpoints})
		return
	}
	_, exists := s.children[msg.ID]
	ctx.RequestWithCustomSender(s.deps.checkpoints.owner, &listCheckpoints{ListCheckpoints: *msg, exists: exists}, ctx.Sender())
}

func (s *supervisorActor) deleteCheckpoint(ctx actor.Context, msg *DeleteCheckpoint) {
	if s.deps.checkpoints == nil {
		ctx.Respond(&DeleteCheckpointResult{Err: errNoCheckpoints})
		return
	}
	ctx.Forward(s.deps.checkpoints.owner)
}

// checkJoin checks what a start's joins name before an actor is spawned:
// the types, the ids, and that each container is known (its actor says
// whether it runs, when the start asks it for its init). Of a namespace
// file only the path is checked here: the runtime checks the file right
// before the start.
func (s *supervisorActor) checkJoin(msg *StartContainer) error {
	if len(msg.Join) == 0 {
		return nil
	}
	if msg.Checkpoint != "" {
		return fmt.Errorf("start container %q: a restore brings back the namespaces it had: it joins none: %w", msg.ID, errclass.InvalidArgument)
	}
	for _, ns := range slices.Sorted(maps.Keys(msg.Join)) {
		j := joinOf(ns, msg.Join[ns])
		switch {
		case ns != runtime.NetworkNamespace && ns != runtime.IPCNamespace && ns != runtime.UTSNamespace:
			return fmt.Errorf("start container %q: join: namespace %q: want %q, %q or %q: %w", msg.ID, ns,
				runtime.NetworkNamespace, runtime.IPCNamespace, runtime.UTSNamespace, errclass.InvalidArgument)
		case j.Path != "":
			if err := runtime.ValidNamespacePath(j.Path); err != nil {
				return fmt.Errorf("start container %q: join %s: %w", msg.ID, ns, err)
			}
			continue
		case j.Container == msg.ID:
			return fmt.Errorf("start container %q: join %s: a container cannot join its own namespaces: %w", msg.ID, ns, errclass.InvalidArgument)
		}
		if err := runtime.ValidID("container id", j.Container); err != nil {
			return fmt.Errorf("start container %q: join %s: %w", msg.ID, ns, err)
		}
		if _, ok := s.children[j.Container]; !ok {
			return fmt.Errorf("start container %q: join %s: %w", msg.ID, ns, s.missing(j.Container))
		}
	}
	if uts, ok := msg.Join[runtime.UTSNamespace]; ok && msg.Image != nil && msg.Image.Overrides.Hostname != "" {
		return fmt.Errorf("start container %q: it names a hostname but joins the UTS namespace %s, whose host name is not this container's: %w",
			msg.ID, joinOf(runtime.UTSNamespace, uts).Where(), errclass.InvalidArgument)
	}
	return nil
}
