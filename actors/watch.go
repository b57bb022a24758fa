package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
)

// Watching processes: the only place where a goroutine waits for a
// process's exit. Each reports to the container's actor by message
// (processExited, oomKilled); the actor's PID stays the same across a
// restart, so a restarted actor still hears of every exit. Replacing these
// goroutines by a callback from the runtime changes this file alone.

// watchInit reports the init's exit and the OOM kills of container c to
// the actor self, from one goroutine.
func watchInit(root *actor.RootContext, self *actor.PID, c runtime.Container) {
	oom, err := c.NotifyOOM()
	if err != nil {
		oom = nil // no OOM events, the exit still comes
	}
	init := c.Init()
	go func() {
		for {
			select {
			case _, ok := <-oom:
				if !ok {
					oom = nil
					continue
				}
				root.Send(self, &oomKilled{})
			case <-init.Done():
				// An OOM kill of the init itself comes before its exit.
				select {
				case _, ok := <-oom:
					if ok {
						root.Send(self, &oomKilled{})
					}
				default:
				}
				st, _ := init.Wait(context.Background())
				root.Send(self, &processExited{pid: init.Pid(), status: st})
				return
			}
		}
	}()
}

// watch reports the exit of an exec'd process to the actor self once it is
// reaped; an exit that comes before anyone asks is not lost, since the
// runtime keeps it.
func watch(root *actor.RootContext, self *actor.PID, p runtime.Process) {
	go func() {
		st, _ := p.Wait(context.Background())
		root.Send(self, &processExited{pid: p.Pid(), status: st})
	}()
}
