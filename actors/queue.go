package actors

import "github.com/asynkron/protoactor-go/actor"

// queue is a container's runtime work that blocks, run one piece at a time
// in a goroutine, off the mailbox: libcontainer serialises a container's
// operations anyway, and an exec racing a pause can deadlock it (exec into
// a frozen container holds the container's lock until a thaw that then
// cannot happen).
//
// Every piece ends by sending the actor a *...Finished message, whose
// handler calls next.
type queue struct {
	work []work
	busy bool
}

// work is one piece of queued runtime work and the command it serves, so
// that work that can no longer run is answered rather than dropped.
type work struct {
	cmd     command
	replyTo *actor.PID
	run     func()
}

// enqueue adds run, the blocking work of the command being received; it
// runs once the work before it has finished.
func (a *containerActor) enqueue(ctx actor.Context, run func()) {
	cmd, _ := ctx.Message().(command)
	q := &a.rec.queue
	q.work = append(q.work, work{cmd: cmd, replyTo: ctx.Sender(), run: run})
	if !q.busy {
		a.next()
	}
}

// next starts the next piece of queued work, if any.
func (a *containerActor) next() {
	q := &a.rec.queue
	if len(q.work) == 0 {
		q.busy = false
		return
	}
	w := q.work[0]
	q.work = q.work[1:]
	q.busy = true
	go w.run()
}

// failAll answers every queued command with err and empties the queue.
func (a *containerActor) failAll(ctx actor.Context, err error) {
	for _, w := range a.rec.queue.work {
		if w.cmd != nil && w.replyTo != nil {
			ctx.Send(w.replyTo, w.cmd.failed(err))
		}
	}
	a.rec.queue.work = nil
}
