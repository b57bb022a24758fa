package actors

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
)

// The warm pools are managed by an actor of their own, spawned beside the
// supervisor: it answers SetPool, GetPool, ListPools and DeletePool and
// spawns one pool actor per pool (pool.go). Starts find a bundle's pool in
// the poolBook, without a message, so that a warm start costs no round trip.

// poolBook is the pools by name and by what they prepare (poolKey of a
// bundle, imagePoolKey of an image and overrides). Only the pools actor
// writes it; starts read it. It outlives an instance of the pools actor,
// so a restarted one still knows its pools.
type poolBook struct {
	mu     sync.RWMutex
	byName map[string]*warmPool
	byKey  map[string]*warmPool
	// deletes are the replies owed once a deleted pool's actor has
	// stopped, by pool actor id; the pools actor's alone.
	deletes map[string]*actor.PID
}

func newPoolBook() *poolBook {
	return &poolBook{byName: make(map[string]*warmPool), byKey: make(map[string]*warmPool),
		deletes: make(map[string]*actor.PID)}
}

// forBundle returns the pool of the bundle at bundlePath, or nil.
func (b *poolBook) forBundle(bundlePath string) *warmPool { return b.forKey(poolKey(bundlePath)) }

// forKey returns the pool of key, or nil.
func (b *poolBook) forKey(key string) *warmPool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.byKey[key]
}

func (b *poolBook) named(name string) (*warmPool, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.byName[name]
	return p, ok
}

func (b *poolBook) add(p *warmPool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byName[p.name], b.byKey[p.key] = p, p
}

func (b *poolBook) remove(p *warmPool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byName, p.name)
	delete(b.byKey, p.key)
}

// poolsActor manages the warm pools.
type poolsActor struct {
	deps     *deps
	book     *poolBook
	stopping bool
}

func newPoolsProps(d *deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &poolsActor{deps: d, book: d.pools} })
}

// Receive implements actor.Actor.
func (s *poolsActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *SetPool:
		s.setPool(ctx, msg)
	case *GetPool:
		if p, ok := s.book.named(msg.Name); ok {
			ctx.Respond(&GetPoolResult{Pool: p.info()})
		} else {
			ctx.Respond(&GetPoolResult{Err: poolNotFound(msg.Name)})
		}
	case *ListPools:
		s.listPools(ctx)
	case *DeletePool:
		s.deletePool(ctx, msg)
	case *actor.Stopping:
		s.stopping = true
	case *actor.Terminated:
		if replyTo, ok := s.book.deletes[msg.Who.Id]; ok {
			delete(s.book.deletes, msg.Who.Id)
			ctx.Send(replyTo, &DeletePoolResult{})
		}
	}
}

func poolNotFound(name string) error {
	return fmt.Errorf("pool %q: %w", name, errclass.NotFound)
}

func (s *poolsActor) setPool(ctx actor.Context, msg *SetPool) {
	if err := runtime.ValidID("pool name", msg.Name); err != nil {
		ctx.Respond(&SetPoolResult{Err: err})
		return
	}
	if msg.Size < 0 || msg.Size > MaxPoolSize {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: size %d: must be 0 to %d: %w", msg.Name, msg.Size, MaxPoolSize, errclass.InvalidArgument)})
		return
	}
	if s.deps.preparer == nil {
		ctx.Respond(&SetPoolResult{Err: errNoPools})
		return
	}
	if s.stopping {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: the daemon is stopping: %w", msg.Name, errclass.Unavailable)})
		return
	}
	if msg.Image != nil && msg.BundlePath != "" {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: a bundle or an image, not both: %w", msg.Name, errclass.InvalidArgument)})
		return
	}
	key := poolKey(msg.BundlePath)
	if msg.Image != nil {
		key = imagePoolKey(msg.Image.Image.Digest, msg.Image.Overrides)
	}
	if p, ok := s.book.named(msg.Name); ok {
		if (msg.BundlePath != "" || msg.Image != nil) && key != p.key {
			ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q is for %s, not %s; delete it first: %w", msg.Name, p.describe(), describeKey(msg), errclass.AlreadyExists)})
			return
		}
		p.size.Store(int64(msg.Size))
		ctx.Send(p.actor, &poolResize{size: msg.Size})
		ctx.Respond(&SetPoolResult{Pool: p.info()})
		return
	}
	if msg.Image == nil && !filepath.IsAbs(msg.BundlePath) {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: bundle path %q must be absolute: %w", msg.Name, msg.BundlePath, errclass.InvalidArgument)})
		return
	}
	if other := s.book.forKey(key); other != nil {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("%s already has pool %q: %w", describeKey(msg), other.name, errclass.AlreadyExists)})
		return
	}
	// A bundle that cannot start is refused now rather than retried for
	// ever (an image's spec was tried by Supervisor.SetImagePool).
	if msg.Image == nil {
		if _, err := bundle.Load(key); err != nil {
			ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: %w", msg.Name, err)})
			return
		}
	}
	p := &warmPool{name: msg.Name, key: key, image: msg.Image, ready: make(chan runtime.Prepared, MaxPoolSize),
		root: ctx.ActorSystem().Root}
	if msg.Image == nil {
		p.bundlePath = key
	}
	p.size.Store(int64(msg.Size))
	pid, err := ctx.SpawnNamed(newPoolProps(p, s.deps), "pool:"+msg.Name)
	if err != nil {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: spawn actor: %v: %w", msg.Name, err, errclass.AlreadyExists)})
		return
	}
	p.actor = pid
	s.book.add(p)
	ctx.Respond(&SetPoolResult{Pool: p.info(), Created: true})
}

func (s *poolsActor) listPools(ctx actor.Context) {
	s.book.mu.RLock()
	out := make([]api.Pool, 0, len(s.book.byName))
	for _, p := range s.book.byName {
		out = append(out, p.info())
	}
	s.book.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	ctx.Respond(&ListPoolsResult{Pools: out})
}

// deletePool forgets the pool at once (new starts go cold) and answers once
// its actor has discarded every prepared container.
func (s *poolsActor) deletePool(ctx actor.Context, msg *DeletePool) {
	p, ok := s.book.named(msg.Name)
	if !ok {
		ctx.Respond(&DeletePoolResult{Err: poolNotFound(msg.Name)})
		return
	}
	s.book.remove(p)
	if ctx.Sender() != nil {
		s.book.deletes[p.actor.Id] = ctx.Sender()
	}
	ctx.Stop(p.actor)
}

// describeKey names what msg asks a pool for, for errors.
func describeKey(msg *SetPool) string {
	if msg.Image != nil {
		return "image " + msg.Image.Image.Digest + " (with these overrides)"
	}
	return "bundle " + poolKey(msg.BundlePath)
}
