package actors

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
)

// delete removes the container (queued work); a live one only with force,
// which kills it first.
func (a *containerActor) delete(ctx actor.Context, msg *DeleteContainer) {
	if a.rec.status != runtime.Stopped && !msg.Force {
		a.refuse(ctx, fmt.Sprintf("is %s (delete it with force to kill it)", a.rec.status))
		return
	}
	self, root, c, replyTo, force, d := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Force, a.deps
	fromImage := a.rec.image != ""
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
		defer cancel()
		err := c.Delete(ctx, force)
		if err == nil && fromImage {
			// The root goes with its container: its writes are the
			// container's alone. The container is gone either way; a
			// root left behind is the next daemon's to remove.
			if uerr := d.images.Store.Unmount(c.ID()); uerr != nil {
				d.logger.Warn("a deleted container's root stays", "id", c.ID(), "err", uerr)
			}
		}
		root.Send(self, &deleteFinished{replyTo: replyTo, err: err})
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
