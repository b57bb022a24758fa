package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
)

// pause freezes (pause) or thaws (!pause) the container, as queued work.
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
