package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime/checkpoint"
)

// checkpoint dumps the container with CRIU into a new checkpoint, as
// queued work, under a write lease from the store's owner
// (checkpoint_store.go).
func (a *containerActor) checkpoint(ctx actor.Context, msg *CheckpointContainer) {
	if a.deps.checkpoints == nil {
		ctx.Respond(&CheckpointContainerResult{Err: errNoCheckpoints})
		return
	}
	if err := a.deps.criuUnusable(); err != nil {
		ctx.Respond(&CheckpointContainerResult{Err: err})
		return
	}
	self, root, c, replyTo, d := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), a.deps
	id, name, o, bundle := a.rec.id, msg.Name, msg.Options, a.rec.bundlePath
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
		defer cancel()
		cp := checkpoint.Checkpoint{Name: name, TCP: o.TCP, UnixSockets: o.UnixSockets, Shell: o.Shell,
			Exit: o.Exit, Container: id, BundlePath: bundle}
		lease, err := d.checkpoints.lease(ctx, id, name, useWrite)
		if err != nil {
			root.Send(self, &checkpointFinished{replyTo: replyTo, err: err})
			return
		}
		images, err := lease.reserve()
		if err == nil {
			if err = c.Checkpoint(ctx, images, o); err != nil {
				lease.abandon()
			}
		}
		cp.Created = time.Now()
		if err == nil {
			if err = lease.commit(cp); err != nil {
				lease.abandon()
			}
		}
		// Released before the reply: whoever gets it may delete the
		// checkpoint at once.
		lease.release()
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
