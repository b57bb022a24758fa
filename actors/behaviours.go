package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
)

// A container actor's behaviour follows its container's status. The
// behaviours nest, so that a command allowed in several statuses is handled
// in one place:
//
//	starting                  StartContainer
//	started                   DeleteContainer (refused unless stopped or forced)
//	├── live                  SignalProcess, SignalContainer, UpdateResources, CheckpointContainer
//	│   ├── running           ExecProcess, PauseContainer, ResumeContainer (no-op)
//	│   └── paused            ResumeContainer, PauseContainer (no-op)
//	└── stopped               (nothing more)
//
// Each behaviour handles its own commands and passes the rest to the one it
// is nested in; the outermost refuses them (errclass.FailedPrecondition), naming
// the status. GetContainer and GetStats are answered in every status
// (containerActor.Receive).

// become switches to the behaviour of the container's status.
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

// starting is the behaviour while the runtime starts the container.
func (a *containerActor) starting(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *StartContainer:
		a.start(ctx, msg)
	default:
		a.refuse(ctx, "is starting")
	}
}

// running is the behaviour of a running container.
func (a *containerActor) running(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ExecProcess:
		a.exec(ctx, msg)
	case *PauseContainer:
		a.pause(ctx, true)
	case *ResumeContainer:
		ctx.Respond(&ResumeContainerResult{Container: a.info()})
	default:
		a.live(ctx)
	}
}

// paused is the behaviour of a frozen container: no exec (it would hold
// libcontainer's lock until a thaw that then cannot happen).
func (a *containerActor) paused(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *PauseContainer:
		ctx.Respond(&PauseContainerResult{Container: a.info()})
	case *ResumeContainer:
		a.pause(ctx, false)
	default:
		a.live(ctx)
	}
}

// live handles what a container whose init runs, frozen or not, does.
func (a *containerActor) live(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *SignalProcess:
		ctx.Respond(&SignalProcessResult{Err: a.signal(msg.Pid, msg.Signal)})
	case *SignalContainer:
		ctx.Respond(&SignalContainerResult{Err: a.signal(a.rec.ctr.Init().Pid(), msg.Signal)})
	case *UpdateResources:
		a.update(ctx, msg)
	case *CheckpointContainer:
		a.checkpoint(ctx, msg)
	default:
		a.started(ctx)
	}
}

// stopped is the behaviour once the init has exited: only delete is left.
func (a *containerActor) stopped(ctx actor.Context) {
	a.started(ctx)
}

// started handles what any container the runtime has made does, and
// refuses the rest.
func (a *containerActor) started(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *DeleteContainer:
		a.delete(ctx, msg)
	default:
		a.refuse(ctx, fmt.Sprintf("is %s", a.rec.status))
	}
}
