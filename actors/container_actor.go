package actors

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// containerActor owns one container: its lifecycle, its processes, its
// events. Receive handles what every status handles the same way (the
// actor's own lifecycle, the reports of its blocking work, queries); the
// commands go to the behaviour of the container's status (behaviours.go).
// Each operation lives in a file of its own: lifecycle.go (start, adopt,
// exits), processes.go (exec, signal), pause.go, resources.go (update,
// stats), checkpoint.go, delete.go.
type containerActor struct {
	rec      *record
	deps     *deps
	behavior actor.Behavior
	log      *slog.Logger
}

func newContainerProps(rec *record, d *deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &containerActor{rec: rec, deps: d, behavior: actor.NewBehavior(),
			log: d.logger.With("id", rec.id)}
	})
}

// Receive implements actor.Actor.
func (a *containerActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopped); ok {
		a.forget()
		return
	}
	if a.rec.removing {
		// Between telling the supervisor and stopping: the container is gone.
		a.answer(ctx, fmt.Errorf("container %q: %w", a.rec.id, errclass.NotFound))
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
		a.rec.oom = true
		a.publish(api.Event{Type: api.EventOOM})
	case *execFinished:
		a.execFinished(ctx, msg)
	case *pauseFinished:
		a.pauseFinished(ctx, msg)
	case *updateFinished:
		a.updateFinished(ctx, msg)
	case *checkpointFinished:
		a.checkpointFinished(ctx, msg)
	case *deleteFinished:
		a.deleteFinished(ctx, msg)
	case *GetContainer:
		a.get(ctx)
	case *GetStats:
		a.stats(ctx)
	case *AttachProcess:
		a.attach(ctx, msg)
	case *WaitProcess:
		a.wait(ctx, msg)
	default:
		a.behavior.Receive(ctx)
	}
}

// answer replies to the command being received, if it is one and its sender
// waits, with its failure reply carrying err.
func (a *containerActor) answer(ctx actor.Context, err error) {
	if cmd, ok := ctx.Message().(command); ok && ctx.Sender() != nil {
		ctx.Respond(cmd.failed(err))
	}
}

// refuse answers a command the current status forbids.
func (a *containerActor) refuse(ctx actor.Context, why string) {
	a.answer(ctx, fmt.Errorf("container %q %s: %w", a.rec.id, why, errclass.FailedPrecondition))
}

func (a *containerActor) get(ctx actor.Context) {
	r := &GetContainerResult{Container: a.info()}
	if a.rec.ctr != nil {
		r.LogPath = a.rec.ctr.LogPath()
	}
	ctx.Respond(r)
}

// changed tells the supervisor the container's new view. A reply to the
// command that made the change goes through the supervisor, after the books:
// a client that got it and then reads the state sees its own change.
func (a *containerActor) changed(ctx actor.Context, replyTo *actor.PID, reply any) {
	ctx.Send(ctx.Parent(), &ContainerChanged{Container: a.info(), ReplyTo: replyTo, Reply: reply})
}

// remove hands the actor's end to the supervisor, which stops it and sends
// the reply once it has stopped and its name is free. The supervisor, not
// the actor, stops it: a stop is a system message, which overtakes user
// messages, so the supervisor could otherwise learn of the end before it
// knew whom to answer. Queued work that can no longer run is answered.
func (a *containerActor) remove(ctx actor.Context, replyTo *actor.PID, reply any) {
	a.rec.removing = true
	a.failAll(ctx, fmt.Errorf("container %q: %w", a.rec.id, errclass.NotFound))
	ctx.Send(ctx.Parent(), &ContainerRemoved{ID: a.rec.id, ReplyTo: replyTo, Reply: reply})
}

// forget drops what a stopped actor holds of its container. A stopped
// actor can stay reachable for a while: protoactor's PIDSet of a parent's
// children leaves removed *PIDs (which cache their process, and so the
// actor) in its backing array, up to the peak number of children. Without
// this each of those would also keep its container's runtime and
// libcontainer state, about 8 KiB.
func (a *containerActor) forget() {
	a.closeStdio()
	a.rec.ctr, a.rec.procs, a.rec.queue.work, a.rec.startReply = nil, nil, nil, nil
}

// info builds a fresh view of the container.
func (a *containerActor) info() api.Container { return a.rec.info() }

func (a *containerActor) publish(e api.Event) {
	e.Container = a.rec.id
	a.deps.events.Publish(e)
}
