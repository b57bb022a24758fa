package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Supervision of container actors.
//
// protoactor's default answer to a panic is Restart: a fresh actor instance,
// its state gone. For a container actor that would be wrong: its identity is
// a live process tree, and a fresh instance would no longer know the init,
// the exec'd processes, their waiters or the queued work, so exits would
// vanish and the container could never be deleted.
//
// troupe keeps Restart but makes it safe: the state lives in a record owned
// by the props, not by the instance, and a restarted instance takes the
// record over (the waiters keep reporting to the same PID). The message that
// panicked is lost; its sender's request times out. If an actor keeps
// failing (more than maxRestarts within restartWindow), it is stopped: the
// supervisor then marks the container in its books as no longer managed,
// and leaves the processes running rather than killing what it cannot
// account for.
const (
	maxRestarts   = 3
	restartWindow = 10 * time.Second
)

// containerSupervision is the strategy the supervisor applies to its
// container actors.
func containerSupervision() actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(maxRestarts, restartWindow, decide)
}

// decide restarts a failed container actor: see the package comment above
// for why that keeps its state.
func decide(reason any) actor.Directive {
	return actor.RestartDirective
}
