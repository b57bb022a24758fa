package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
)

// Watching processes: the runtime calls back on each exit and OOM kill (from
// its reactor, in package linux), and the callback only sends the container's
// actor a message (processExited, oomKilled). No goroutine waits per
// container or per process. The actor's PID stays the same across a restart,
// so a restarted actor still hears of every exit.

// watchInit reports the OOM kills in container c and its init's exit to the
// actor self. The runtime reports an OOM kill of the init before its exit.
func watchInit(root *actor.RootContext, self *actor.PID, c runtime.Container) {
	// Without OOM events (no memory controller), the exit still comes.
	_ = c.OnOOM(func() { root.Send(self, &oomKilled{}) })
	watch(root, self, c.Init())
}

// watch reports the exit of p to the actor self once it is reaped; an exit
// that came before is reported too.
func watch(root *actor.RootContext, self *actor.PID, p runtime.Process) {
	pid := p.Pid()
	p.OnExit(func(st runtime.ExitStatus) { root.Send(self, &processExited{pid: pid, status: st}) })
}
