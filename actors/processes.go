package actors

import (
	"fmt"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// A container's processes beyond its init: exec starts them (queued work),
// signals go to any of them at once (a kill(2) that does not block).

func (a *containerActor) exec(ctx actor.Context, msg *ExecProcess) {
	if err := msg.Process.Validate(); err != nil {
		ctx.Respond(&ExecProcessResult{Err: fmt.Errorf("exec in container %q: %w", a.rec.id, err)})
		return
	}
	self, root, c, replyTo, spec, d := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), msg.Process, a.deps
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
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
	watch(ctx.ActorSystem().Root, ctx.Self(), msg.process)
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
		return fmt.Errorf("signal %d: not a signal (0 to %d): %w", sig, maxSignal, errclass.InvalidArgument)
	}
	return a.rec.ctr.Signal(pid, sig)
}

// maxSignal is the highest real-time signal on Linux.
const maxSignal = 64
