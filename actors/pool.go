package actors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// MaxPoolSize bounds a warm pool: each member is a container with an init,
// cgroups and mounts, made ahead.
const MaxPoolSize = 10000

// refillQuiet is how long a pool waits after a container was taken before
// it prepares more. A prepare costs as much CPU as a cold start (about ten
// claims' worth), so refilling in the middle of a burst of warm starts
// would slow the very starts the pool is there for; the burst goes first,
// the pool refills once it is over (or once it ran dry).
const refillQuiet = 20 * time.Millisecond

// warmPool is what a start needs of a pool: the prepared containers ready to
// claim, taken without a message so that a warm start costs no round trip.
// The pool actor fills it and is told when one is taken.
type warmPool struct {
	name string
	key  string // its poolBook key
	// bundlePath is a bundle pool's bundle; image an image pool's image.
	bundlePath string
	image      *ImagePool
	ready      chan runtime.Prepared
	actor      *actor.PID
	root       *actor.RootContext
	size       atomic.Int64
	filling    atomic.Int64
	lastErr    atomic.Pointer[string]
	lastTake   atomic.Int64 // unix nanoseconds

	mu       sync.Mutex // orders offers against stopping
	stopped  bool
	inflight sync.WaitGroup // prepares under way
}

// offer puts a freshly prepared container in the pool; false when the pool
// has stopped, is full or the container is stale already: discard it.
func (p *warmPool) offer(c runtime.Prepared) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || c.Stale() || int64(len(p.ready)) >= p.size.Load() {
		return false
	}
	return p.giveBack(c)
}

// take returns a prepared container, or nil when none is ready.
func (p *warmPool) take() runtime.Prepared {
	select {
	case c := <-p.ready:
		p.lastTake.Store(time.Now().UnixNano())
		p.root.Send(p.actor, &poolRefill{})
		return c
	default:
		return nil
	}
}

// giveBack returns an unused prepared container; false if the pool is full.
func (p *warmPool) giveBack(c runtime.Prepared) bool {
	select {
	case p.ready <- c:
		return true
	default:
		return false
	}
}

func (p *warmPool) info() api.Pool {
	i := api.Pool{Name: p.name, BundlePath: p.bundlePath, Size: int(p.size.Load()),
		Ready: len(p.ready), Filling: int(p.filling.Load())}
	if p.image != nil {
		i.Image, i.Digest = p.image.Ref, p.image.Image.Digest
	}
	if e := p.lastErr.Load(); e != nil {
		i.Error = *e
	}
	return i
}

// prepare makes a container for the pool.
func (p *warmPool) prepare(ctx context.Context, d *deps) (runtime.Prepared, error) {
	if p.image != nil {
		return d.prepareImage(ctx, p.image)
	}
	return d.preparer.Prepare(ctx, p.bundlePath)
}

// describe names what the pool prepares, for errors.
func (p *warmPool) describe() string {
	if p.image != nil {
		return "image " + p.image.Image.Digest + " (with other overrides)"
	}
	return "bundle " + p.bundlePath
}

// Messages of a pool actor.
type (
	poolRefill   struct{}
	poolRetry    struct{} // a delayed fill is due
	poolFlush    struct{} // the bundle changed: discard what is ready
	poolResize   struct{ size int }
	poolPrepared struct{ err error }
)

// poolActor keeps a warm pool at its size: it prepares containers off the
// mailbox, through the same admission as starts (a refill never starves
// them of more than the admission's share), and discards them when the pool
// shrinks, its bundle changes or it stops.
type poolActor struct {
	pool    *warmPool
	deps    *deps
	retryAt time.Time // after a failed prepare, no new one before
	backoff time.Duration
	retry   bool // a delayed fill is scheduled
}

func newPoolProps(p *warmPool, d *deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &poolActor{pool: p, deps: d} })
}

// Receive implements actor.Actor.
func (a *poolActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *poolRefill:
		a.fill(ctx)
	case *poolRetry:
		a.retry = false
		a.fill(ctx)
	case *poolResize:
		a.pool.size.Store(int64(msg.size))
		a.discard(a.drain(len(a.pool.ready) - msg.size))
		a.fill(ctx)
	case *poolFlush:
		a.discard(a.drain(len(a.pool.ready)))
		a.fill(ctx)
	case *poolPrepared:
		a.prepared(ctx, msg)
	case *actor.Stopping:
		// Synchronously: the daemon stops only after the pool is gone.
		a.pool.mu.Lock()
		a.pool.stopped = true
		a.pool.mu.Unlock()
		a.discardNow(a.drain(len(a.pool.ready)))
		a.pool.inflight.Wait() // the last prepares discard what they made
	}
}

func (a *poolActor) fill(ctx actor.Context) {
	if wait := time.Until(a.retryAt); wait > 0 {
		a.scheduleRetry(ctx, wait)
		return
	}
	if len(a.pool.ready) > 0 {
		if wait := refillQuiet - time.Since(time.Unix(0, a.pool.lastTake.Load())); wait > 0 {
			a.scheduleRetry(ctx, wait)
			return
		}
	}
	limit := int64(cap(a.deps.admission.slots))
	for a.pool.filling.Load() < limit && int64(len(a.pool.ready))+a.pool.filling.Load() < a.pool.size.Load() {
		a.pool.filling.Add(1)
		a.pool.inflight.Add(1)
		self, root, d, adm, p := ctx.Self(), ctx.ActorSystem().Root, a.deps, a.deps.admission, a.pool
		timeout, log := a.deps.timeout, a.deps.logger
		go func() {
			defer p.inflight.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var c runtime.Prepared
			_, err := adm.acquire(ctx)
			if err == nil {
				c, err = p.prepare(ctx, d)
				adm.release()
			}
			if err == nil && !p.offer(c) {
				if derr := c.Discard(ctx); derr != nil {
					log.Warn("warm pool: discard failed", "pool", p.name, "err", derr)
				}
			}
			p.filling.Add(-1)
			root.Send(self, &poolPrepared{err: err})
		}()
	}
}

func (a *poolActor) scheduleRetry(ctx actor.Context, wait time.Duration) {
	if a.retry {
		return
	}
	a.retry = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(wait, func() { root.Send(self, &poolRetry{}) })
}

func (a *poolActor) prepared(ctx actor.Context, msg *poolPrepared) {
	if msg.err != nil {
		// A bundle that cannot start would otherwise be retried in a loop.
		// Prepares that failed together count once.
		if now := time.Now(); !now.Before(a.retryAt) {
			a.backoff = min(max(2*a.backoff, time.Second), 30*time.Second)
			a.retryAt = now.Add(a.backoff)
		}
		e := msg.err.Error()
		a.pool.lastErr.Store(&e)
		a.deps.logger.Warn("warm pool: prepare failed", "pool", a.pool.name, "retry_in", a.backoff, "err", msg.err)
	} else {
		a.backoff = 0
		a.pool.lastErr.Store(nil)
	}
	a.fill(ctx)
}

// drain takes up to n ready containers out of the pool.
func (a *poolActor) drain(n int) []runtime.Prepared {
	var out []runtime.Prepared
	for ; n > 0; n-- {
		select {
		case c := <-a.pool.ready:
			out = append(out, c)
		default:
			return out
		}
	}
	return out
}

// discard destroys containers off the mailbox.
func (a *poolActor) discard(cs []runtime.Prepared) {
	if len(cs) > 0 {
		go a.discardNow(cs)
	}
}

// discardNow destroys containers, a few at a time.
func (a *poolActor) discardNow(cs []runtime.Prepared) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), a.deps.timeout)
			defer cancel()
			if err := c.Discard(ctx); err != nil {
				a.deps.logger.Warn("warm pool: discard failed", "pool", a.pool.name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// claimWarm starts container id from a pool's prepared container. ok is
// false when the pool has none ready (or only stale ones): start it cold.
func claimWarm(ctx context.Context, p *warmPool, id string) (c runtime.Container, ok bool, err error) {
	for {
		prep := p.take()
		if prep == nil {
			return nil, false, nil
		}
		if prep.Stale() {
			p.root.Send(p.actor, &poolFlush{})
			_ = prep.Discard(ctx)
			return nil, false, nil
		}
		c, err := prep.Claim(ctx, id, runtime.ClaimOptions{})
		switch {
		case err == nil:
			return c, true, nil
		case errors.Is(err, errclass.AlreadyExists), errors.Is(err, errclass.InvalidArgument):
			if !p.giveBack(prep) {
				_ = prep.Discard(ctx)
			}
			return nil, true, err
		}
		// That one failed (its init died?) and is gone: try the next.
	}
}

// poolKey is how pools are found by bundle: the cleaned absolute path.
func poolKey(bundlePath string) string { return filepath.Clean(bundlePath) }

// errNoPools answers pool commands when the runtime cannot prepare.
var errNoPools = fmt.Errorf("warm pools are not available with this runtime: %w", errclass.Unavailable)
