package actors

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
)

func poolNotFound(name string) error {
	return fmt.Errorf("pool %q: %w", name, runtime.ErrNotFound)
}

func (s *supervisorActor) setPool(ctx actor.Context, msg *SetPool) {
	if err := runtime.ValidID("pool name", msg.Name); err != nil {
		ctx.Respond(&SetPoolResult{Err: err})
		return
	}
	if msg.Size < 0 || msg.Size > MaxPoolSize {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: size %d: must be 0 to %d: %w", msg.Name, msg.Size, MaxPoolSize, runtime.ErrInvalidArgument)})
		return
	}
	if s.deps.preparer == nil {
		ctx.Respond(&SetPoolResult{Err: errNoPools})
		return
	}
	if s.stopping {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: the daemon is stopping: %w", msg.Name, runtime.ErrUnavailable)})
		return
	}
	key := poolKey(msg.BundlePath)
	if p, ok := s.pools[msg.Name]; ok {
		if msg.BundlePath != "" && key != p.bundlePath {
			ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q is for bundle %s, not %s; delete it first: %w", msg.Name, p.bundlePath, key, runtime.ErrAlreadyExists)})
			return
		}
		p.size.Store(int64(msg.Size))
		ctx.Send(p.actor, &poolResize{size: msg.Size})
		ctx.Respond(&SetPoolResult{Pool: p.info()})
		return
	}
	if !filepath.IsAbs(msg.BundlePath) {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: bundle path %q must be absolute: %w", msg.Name, msg.BundlePath, runtime.ErrInvalidArgument)})
		return
	}
	if other, ok := s.poolsByKey[key]; ok {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("bundle %s already has pool %q: %w", key, other.name, runtime.ErrAlreadyExists)})
		return
	}
	// A bundle that cannot start is refused now rather than retried for ever.
	if _, err := bundle.Load(key); err != nil {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: %w", msg.Name, err)})
		return
	}
	p := &warmPool{name: msg.Name, bundlePath: key, ready: make(chan runtime.Prepared, MaxPoolSize),
		root: ctx.ActorSystem().Root}
	p.size.Store(int64(msg.Size))
	pid, err := ctx.SpawnNamed(newPoolProps(p, s.deps), "pool:"+msg.Name)
	if err != nil {
		ctx.Respond(&SetPoolResult{Err: fmt.Errorf("pool %q: spawn actor: %v: %w", msg.Name, err, runtime.ErrAlreadyExists)})
		return
	}
	p.actor = pid
	s.pools[msg.Name], s.poolsByKey[key] = p, p
	ctx.Respond(&SetPoolResult{Pool: p.info(), Created: true})
}

func (s *supervisorActor) listPools(ctx actor.Context) {
	out := make([]api.Pool, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	ctx.Respond(&ListPoolsResult{Pools: out})
}

// deletePool forgets the pool at once (new starts go cold) and answers once
// its actor has discarded every prepared container.
func (s *supervisorActor) deletePool(ctx actor.Context, msg *DeletePool) {
	p, ok := s.pools[msg.Name]
	if !ok {
		ctx.Respond(&DeletePoolResult{Err: poolNotFound(msg.Name)})
		return
	}
	delete(s.pools, msg.Name)
	delete(s.poolsByKey, p.bundlePath)
	if ctx.Sender() != nil {
		s.poolDeletes[p.actor.Id] = ctx.Sender()
	}
	ctx.Stop(p.actor)
}
