package actors

import (
	"fmt"
	"sort"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/stdio"
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
	stdioOpts, id := msg.Stdio, a.rec.id
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
		defer cancel()
		var sess *stdio.Session
		if stdioOpts != nil {
			s, child, err := stdio.New(*stdioOpts)
			if err != nil {
				root.Send(self, &execFinished{replyTo: replyTo, err: fmt.Errorf("exec in container %q: %w", id, err)})
				return
			}
			child.Apply(&spec)
			defer child.Close()
			sess = s
		}
		p, err := c.Exec(ctx, spec)
		if sess != nil {
			if err == nil {
				err = sess.Start(ctx)
				if err != nil {
					// Without its terminal the process is of no use.
					_ = c.Signal(p.Pid(), syscall.SIGKILL)
					err = fmt.Errorf("exec in container %q: %w", id, err)
				}
			}
			if err != nil {
				sess.Close()
				sess = nil
			}
		}
		root.Send(self, &execFinished{replyTo: replyTo, process: p, stdio: sess, terminal: stdioOpts != nil && stdioOpts.Terminal, err: err})
	})
}

func (a *containerActor) execFinished(ctx actor.Context, msg *execFinished) {
	defer a.next()
	if msg.err != nil {
		if msg.process != nil {
			watch(ctx.ActorSystem().Root, ctx.Self(), msg.process)
		}
		ctx.Send(msg.replyTo, &ExecProcessResult{Err: msg.err})
		return
	}
	watch(ctx.ActorSystem().Root, ctx.Self(), msg.process)
	info := processInfo(msg.process)
	if msg.stdio != nil {
		info.Stdio, info.Terminal = true, msg.terminal
		if a.rec.stdio == nil {
			a.rec.stdio = make(map[int]*stdio.Session)
		}
		a.rec.stdio[info.Pid] = msg.stdio
	}
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

// attach answers with the stdio the daemon keeps of process pid, or for
// the init whose output goes to its log, that log (and its stdin's, if
// kept).
func (a *containerActor) attach(ctx actor.Context, msg *AttachProcess) {
	isInit := a.rec.ctr != nil && msg.Pid == a.rec.ctr.Init().Pid()
	stopped := a.rec.status == runtime.Stopped
	if sess, ok := a.rec.stdio[msg.Pid]; ok {
		switch {
		case sess.Done():
			// Its exit was read: nothing more will come.
			sess.Close()
			delete(a.rec.stdio, msg.Pid)
		case sess.KeepsOutput():
			ctx.Respond(&AttachProcessResult{Session: sess})
			return
		case !(isInit && stopped):
			ctx.Respond(&AttachProcessResult{Session: sess, InitLog: a.rec.ctr.LogPath()})
			return
		}
	}
	if isInit {
		if stopped {
			ctx.Respond(&AttachProcessResult{Err: fmt.Errorf("container %q is stopped: its init exited, nothing to attach to (troupe logs shows what it wrote): %w", a.rec.id, errclass.FailedPrecondition)})
			return
		}
		ctx.Respond(&AttachProcessResult{InitLog: a.rec.ctr.LogPath()})
		return
	}
	if a.rec.procIndex(msg.Pid) >= 0 {
		ctx.Respond(&AttachProcessResult{Err: fmt.Errorf("process %d of container %q: its stdio is not kept by the daemon (exec it with attach): %w", msg.Pid, a.rec.id, errclass.FailedPrecondition)})
		return
	}
	ctx.Respond(&AttachProcessResult{Err: fmt.Errorf("process %d of container %q: %w", msg.Pid, a.rec.id, errclass.NotFound)})
}

// wait answers with process pid to wait on, or with how it ended.
func (a *containerActor) wait(ctx actor.Context, msg *WaitProcess) {
	if i := a.rec.procIndex(msg.Pid); i >= 0 {
		ctx.Respond(&WaitProcessResult{Process: a.rec.procs[i]})
		return
	}
	if a.rec.ctr != nil && msg.Pid == a.rec.ctr.Init().Pid() && a.rec.exit != nil {
		st := *a.rec.exit
		ctx.Respond(&WaitProcessResult{Exit: &st})
		return
	}
	for i := len(a.rec.exits) - 1; i >= 0; i-- {
		if a.rec.exits[i].pid == msg.Pid {
			st := a.rec.exits[i].exit
			ctx.Respond(&WaitProcessResult{Exit: &st})
			return
		}
	}
	ctx.Respond(&WaitProcessResult{Err: fmt.Errorf("process %d of container %q: %w", msg.Pid, a.rec.id, errclass.NotFound)})
}

// execExited records how an exec'd process ended, for a later wait, and
// tells its streams.
func (a *containerActor) execExited(pid int, st runtime.ExitStatus) {
	if len(a.rec.exits) == keptExits {
		// The oldest goes; the slice keeps its array.
		copy(a.rec.exits, a.rec.exits[1:])
		a.rec.exits = a.rec.exits[:keptExits-1]
	}
	a.rec.exits = append(a.rec.exits, pidExit{pid: pid, exit: st})
	a.streamExited(pid, st)
}

// streamExited tells the streams of process pid, if any, that it ended,
// and lets go of the streams no client will read again: those whose exit
// was read and, beyond keptStreams, the oldest finished ones.
func (a *containerActor) streamExited(pid int, st runtime.ExitStatus) {
	if sess, ok := a.rec.stdio[pid]; ok {
		sess.Exited(st)
	}
	var finished []int
	for pid, sess := range a.rec.stdio {
		switch {
		case sess.Done():
			sess.Close()
			delete(a.rec.stdio, pid)
		case a.rec.procIndex(pid) < 0:
			finished = append(finished, pid)
		}
	}
	if extra := len(finished) - keptStreams; extra > 0 {
		age := make(map[int]int, len(a.rec.exits))
		for i, e := range a.rec.exits {
			age[e.pid] = i + 1 // 0: older than any exit kept
		}
		sort.Slice(finished, func(i, j int) bool { return age[finished[i]] < age[finished[j]] })
		for _, pid := range finished[:extra] {
			a.rec.stdio[pid].Close()
			delete(a.rec.stdio, pid)
		}
	}
}

// closeStdio closes every stream, for a container that goes.
func (a *containerActor) closeStdio() {
	for pid, sess := range a.rec.stdio {
		sess.Close()
		delete(a.rec.stdio, pid)
	}
}

// liveStdio is the pid of a live process whose stdio the daemon keeps (an
// attached exec, an init with a kept stdin or a terminal), or 0.
func (a *containerActor) liveStdio() int {
	for pid := range a.rec.stdio {
		if a.rec.procIndex(pid) >= 0 {
			return pid
		}
	}
	return 0
}
