package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/runtime"
)

// deps are what the actors of one supervisor share: the supervisor, every
// container actor, the pools and the checkpoint store's owner. They are set
// up once by Spawn and never change; what changes behind them (the pools,
// the checkpoints in use) is owned by one actor each.
type deps struct {
	runtime     runtime.Runtime
	preparer    runtime.Preparer // nil: no warm pools
	pools       *poolBook        // the warm pools, for starts to claim from
	poolsPID    *actor.PID       // the pools actor (pools.go)
	checkpoints *checkpoints     // nil: checkpoints unavailable
	images      *Images          // nil: no image store
	criuErr     func() error     // why CRIU cannot be used now, if so; nil: usable
	events      *events.Log
	admission   *admission
	logger      *slog.Logger
	timeout     time.Duration // bound on one runtime operation
}

// criuUnusable says why CRIU cannot be used now, or nil.
func (d *deps) criuUnusable() error {
	if d.criuErr == nil {
		return nil
	}
	return d.criuErr()
}

// opContext bounds one runtime operation.
func (d *deps) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.timeout)
}
