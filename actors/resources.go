package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
)

// A container's cgroup: its limits changed (queued work) and its figures
// read.

func (a *containerActor) update(ctx actor.Context, msg *UpdateResources) {
	self, root, c, replyTo, res := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Resources
	a.enqueue(ctx, func() {
		root.Send(self, &updateFinished{replyTo: replyTo, err: c.Update(res)})
	})
}

func (a *containerActor) updateFinished(ctx actor.Context, msg *updateFinished) {
	ctx.Send(msg.replyTo, &UpdateResourcesResult{Err: msg.err})
	a.next()
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
