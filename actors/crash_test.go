package actors

import (
	"context"
	"fmt"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime"
)

// crashSignal is the signal that a crashingRuntime's containers panic on
// instead of delivering it. A container actor signals in its own mailbox,
// so the panic is the actor's: the tests of supervision use it to make an
// actor fail without a hook in the production code.
const crashSignal = syscall.SIGSYS

// crashingRuntime is a runtime whose containers panic when sent
// crashSignal; everything else goes to the runtime it wraps.
type crashingRuntime struct{ runtime.Runtime }

func (r crashingRuntime) Start(ctx context.Context, id string, o runtime.StartOptions) (runtime.Container, error) {
	c, err := r.Runtime.Start(ctx, id, o)
	if err != nil {
		return nil, err
	}
	return crashingContainer{c}, nil
}

func (r crashingRuntime) Load(ctx context.Context, id string) (runtime.Container, error) {
	c, err := r.Runtime.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return crashingContainer{c}, nil
}

type crashingContainer struct{ runtime.Container }

func (c crashingContainer) Signal(pid int, sig syscall.Signal) error {
	if sig == crashSignal {
		panic(fmt.Sprintf("container %s: crash requested", c.ID()))
	}
	return c.Container.Signal(pid, sig)
}

// crash makes container id's actor panic, through the supervisor. The
// container must run on a crashingRuntime.
func crash(root *actor.RootContext, sup *Supervisor, id string) {
	root.Send(sup.PID(), &SignalContainer{ID: id, Signal: crashSignal})
}
