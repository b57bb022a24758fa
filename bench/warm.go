package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// WarmPoolName is the pool the warm target makes on the daemon.
const WarmPoolName = "troupe-bench"

// ErrStartedCold is a warm target's start that the daemon served cold (its
// pool had none ready): counted as a failure, so that warm and cold starts
// are never mixed in one figure.
var ErrStartedCold = errors.New("started cold: the warm pool had none ready")

// TroupeWarm is troupe with a warm pool: Setup asks the daemon for a pool
// of the bundle as large as the run and waits until it is full, so each
// start claims a prepared container. The pool refills while the run goes on,
// as it would in use; the filling's CPU counts in the run's CPU per start.
type TroupeWarm struct {
	*Troupe
	size int
	// Fill is how long the pool took to fill in Setup.
	Fill time.Duration
}

var _ Target = (*TroupeWarm)(nil)

// NewTroupeWarm returns the warm target of the daemon o names, with a pool
// of size prepared containers.
func NewTroupeWarm(o TroupeOptions, size int) (*TroupeWarm, error) {
	t, err := NewTroupe(o)
	if err != nil {
		return nil, err
	}
	return &TroupeWarm{Troupe: t, size: size}, nil
}

// Name returns "troupe-warm", or "troupe-image-warm" for a pool of an
// image.
func (t *TroupeWarm) Name() string {
	if t.opts.Image != "" {
		return "troupe-image-warm"
	}
	return "troupe-warm"
}

// Setup makes the pool and waits until every prepared container is ready.
func (t *TroupeWarm) Setup(ctx context.Context, bundle string) error {
	if err := t.Troupe.Setup(ctx, bundle); err != nil {
		return err
	}
	t0 := time.Now()
	var err error
	if t.opts.Image != "" {
		// The overrides of the run's starts: none.
		_, err = t.client.SetImagePool(ctx, WarmPoolName, api.ImageStart{Image: t.opts.Image}, t.size)
	} else {
		_, err = t.client.SetPool(ctx, WarmPoolName, bundle, t.size)
	}
	if err != nil {
		return fmt.Errorf("make the warm pool: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := t.client.Pool(ctx, WarmPoolName)
		if err != nil {
			return fmt.Errorf("warm pool: %w", err)
		}
		if p.Ready >= t.size {
			t.Fill = time.Since(t0)
			return nil
		}
		if p.Error != "" && p.Ready == 0 && p.Filling == 0 {
			return fmt.Errorf("warm pool cannot prepare containers: %s", p.Error)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Start starts container id and fails with ErrStartedCold unless the daemon
// claimed a prepared one.
func (t *TroupeWarm) Start(ctx context.Context, id string) error {
	info, err := t.start(ctx, id)
	if err != nil {
		return err
	}
	if !info.Warm {
		return ErrStartedCold
	}
	return nil
}

// quiesce empties the pool, which refills after the run's claims: what is
// measured next is the claimed containers, not a second pool.
func (t *TroupeWarm) quiesce(ctx context.Context) {
	_, _ = t.client.SetPool(ctx, WarmPoolName, "", 0)
	t.Troupe.quiesce(ctx)
}

// Teardown removes the pool first (it refills as containers are claimed),
// then the containers.
func (t *TroupeWarm) Teardown(ctx context.Context) error {
	err := t.client.DeletePool(ctx, WarmPoolName)
	if errors.Is(err, errclass.NotFound) {
		err = nil
	}
	return errors.Join(err, t.Troupe.Teardown(ctx))
}
