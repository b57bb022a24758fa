package actors

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/checkpoint"
)

// The checkpoint store has one owner: an actor of its own (spawned beside
// the supervisor) that every use of a checkpoint goes through. Listing and
// deleting are its commands (ListCheckpoints, routed by the supervisor,
// and DeleteCheckpoint). Everything that reads or writes a checkpoint's
// files for longer (a container's dump, a restore, the export and import
// of an archive) first takes a lease from it, does its work outside any
// mailbox (a stream can take as long as its client), and then releases it.
//
// Leases keep the uses of one checkpoint apart:
//
//	read    export, restore              shared with other reads
//	write   a container's dump, import   alone
//	delete  DeleteCheckpoint             alone
//
// A use that conflicts with a lease is refused at once, not queued: a delete
// of a checkpoint being exported or restored answers errclass.FailedPrecondition
// (409 in the API) and can be sent again once that is done, since waiting
// would hold the delete for as long as the slowest reader; a dump or import
// of a name in use answers errclass.AlreadyExists, as it would once the name is
// written.

// checkpointUse is what a lease is for.
type checkpointUse int

const (
	useRead checkpointUse = iota
	useWrite
	useDelete
)

// checkpoints is the way to the store's owner, shared through deps. Its
// lease blocks until the owner answers: call it from a goroutine, never
// from an actor's Receive.
type checkpoints struct {
	owner *actor.PID
	root  *actor.RootContext
	// lastToken numbers the leases, so that a lease whose grant came too
	// late for its asker can still be released.
	lastToken atomic.Uint64
}

// errNoCheckpoints answers checkpoint commands of a supervisor without a
// checkpoint store.
var errNoCheckpoints = fmt.Errorf("checkpoint/restore is not available in this daemon: no checkpoint store: %w", errclass.Unavailable)

// lease asks the owner for a lease on checkpoint id/name; release it when
// done.
func (c *checkpoints) lease(ctx context.Context, id, name string, use checkpointUse) (*checkpointLease, error) {
	if c == nil {
		return nil, errNoCheckpoints
	}
	timeout := time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	token := c.lastToken.Add(1)
	key := checkpointKey(id, name)
	res, err := c.root.RequestFuture(c.owner, &acquireCheckpoint{id: id, name: name, use: use, token: token}, timeout).Result()
	if err != nil {
		// The owner may grant it after all: give it back, in case.
		c.root.Send(c.owner, &releaseCheckpoint{key: key, token: token})
		return nil, fmt.Errorf("checkpoint %s/%s: %w", id, name, err)
	}
	r := res.(*checkpointLeased)
	return r.lease, r.err
}

// checkpointLease is the right to use checkpoint id/name for one use, and
// the store's operations that use allows.
type checkpointLease struct {
	store    *checkpoint.Store
	id, name string
	use      checkpointUse
	token    uint64
	owner    *actor.PID
	root     *actor.RootContext
	once     sync.Once
}

// release gives the lease back; further calls do nothing.
func (l *checkpointLease) release() {
	l.once.Do(func() { l.root.Send(l.owner, &releaseCheckpoint{key: checkpointKey(l.id, l.name), token: l.token}) })
}

// get returns the checkpoint and the directory of its images (read).
func (l *checkpointLease) get() (checkpoint.Checkpoint, string, error) {
	return l.store.Get(l.id, l.name)
}

// export writes the checkpoint to w as a tar archive (read).
func (l *checkpointLease) export(w io.Writer) error { return l.store.Export(l.id, l.name, w) }

// importFrom reads an archive into the checkpoint (write).
func (l *checkpointLease) importFrom(r io.Reader, maxBytes int64) (checkpoint.Checkpoint, error) {
	return l.store.Import(l.id, l.name, r, maxBytes)
}

// reserve makes the checkpoint's directory for a dump and returns where the
// images go (write).
func (l *checkpointLease) reserve() (string, error) { return l.store.Reserve(l.id, l.name) }

// commit records a finished dump (write).
func (l *checkpointLease) commit(cp checkpoint.Checkpoint) error { return l.store.Commit(l.id, cp) }

// abandon removes a reserved checkpoint whose dump failed (write).
func (l *checkpointLease) abandon() { l.store.Abandon(l.id, l.name) }

func checkpointKey(id, name string) string { return id + "/" + name }

// ownerTokens marks the tokens of the owner's own leases.
const ownerTokens = 1 << 63

// Messages of the checkpoint store's owner, besides ListCheckpoints (as
// listCheckpoints) and DeleteCheckpoint.
type (
	// acquireCheckpoint asks for a lease; the reply is a *checkpointLeased.
	acquireCheckpoint struct {
		id, name string
		use      checkpointUse
		token    uint64
	}
	checkpointLeased struct {
		lease *checkpointLease
		err   error
	}
	// releaseCheckpoint gives a lease back.
	releaseCheckpoint struct {
		key   string
		token uint64
	}
	// listCheckpoints is ListCheckpoints as the supervisor routes it, with
	// what its books say: whether the container exists.
	listCheckpoints struct {
		ListCheckpoints
		exists bool
	}
	// checkpointDeleted reports the end of a delete.
	checkpointDeleted struct {
		key     string
		token   uint64
		replyTo *actor.PID
		err     error
	}
)

// checkpointHolds are the leases held, by checkpoint. They outlive an
// instance of the owner: a restarted owner still knows what is in use.
type checkpointHolds struct {
	store *checkpoint.Store
	held  map[string]*checkpointHold
	// lastToken numbers the owner's own leases (deletes); ownerTokens
	// keeps them apart from the askers'.
	lastToken uint64
}

// checkpointHold is the leases held on one checkpoint, by token: readers,
// or one writer or deleter.
type checkpointHold struct {
	use    checkpointUse
	tokens map[uint64]bool
}

// checkpointOwner is the actor that owns the store.
type checkpointOwner struct {
	holds *checkpointHolds
}

func newCheckpointOwnerProps(store *checkpoint.Store) *actor.Props {
	holds := &checkpointHolds{store: store, held: make(map[string]*checkpointHold)}
	return actor.PropsFromProducer(func() actor.Actor { return &checkpointOwner{holds: holds} })
}

// Receive implements actor.Actor.
func (o *checkpointOwner) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *acquireCheckpoint:
		key := checkpointKey(msg.id, msg.name)
		if err := o.take(key, msg.use, msg.token); err != nil {
			ctx.Respond(&checkpointLeased{err: err})
			return
		}
		ctx.Respond(&checkpointLeased{lease: &checkpointLease{store: o.holds.store, id: msg.id, name: msg.name,
			use: msg.use, token: msg.token, owner: ctx.Self(), root: ctx.ActorSystem().Root}})
	case *releaseCheckpoint:
		o.give(msg.key, msg.token)
	case *listCheckpoints:
		o.list(ctx, msg)
	case *DeleteCheckpoint:
		o.delete(ctx, msg)
	case *checkpointDeleted:
		o.give(msg.key, msg.token)
		if msg.replyTo != nil {
			ctx.Send(msg.replyTo, &DeleteCheckpointResult{Err: msg.err})
		}
	}
}

// take records lease token on key for use, or says why it conflicts.
func (o *checkpointOwner) take(key string, use checkpointUse, token uint64) error {
	h, ok := o.holds.held[key]
	if !ok {
		o.holds.held[key] = &checkpointHold{use: use, tokens: map[uint64]bool{token: true}}
		return nil
	}
	switch {
	case h.use == useRead && use == useRead:
		h.tokens[token] = true
		return nil
	case use == useDelete:
		return fmt.Errorf("checkpoint %s is being %s; delete it once that is done: %w", key, h.use.doing(), errclass.FailedPrecondition)
	case use == useWrite && h.use != useDelete:
		return fmt.Errorf("checkpoint %s is being %s: %w", key, h.use.doing(), errclass.AlreadyExists)
	default:
		return fmt.Errorf("checkpoint %s is being %s: %w", key, h.use.doing(), errclass.FailedPrecondition)
	}
}

// give drops lease token on key; a token it does not hold (a lease
// refused, or released twice) changes nothing.
func (o *checkpointOwner) give(key string, token uint64) {
	h, ok := o.holds.held[key]
	if !ok {
		return
	}
	delete(h.tokens, token)
	if len(h.tokens) == 0 {
		delete(o.holds.held, key)
	}
}

func (u checkpointUse) doing() string {
	switch u {
	case useRead:
		return "read (exported or restored)"
	case useWrite:
		return "written"
	default:
		return "deleted"
	}
}

// list reads the store off the mailbox and answers directly.
func (o *checkpointOwner) list(ctx actor.Context, msg *listCheckpoints) {
	root, replyTo, store := ctx.ActorSystem().Root, ctx.Sender(), o.holds.store
	if replyTo == nil {
		return // no one asks
	}
	go func() {
		list, err := store.List(msg.ID)
		// Checkpoints outlive their container, so an id without a
		// container may still have some; one with neither is unknown.
		if err == nil && len(list) == 0 && !msg.exists {
			err = fmt.Errorf("container %q: no such container and no checkpoints of it: %w", msg.ID, errclass.NotFound)
		}
		root.Send(replyTo, &ListCheckpointsResult{Checkpoints: list, Err: err})
	}()
}

// delete removes a checkpoint no one uses, off the mailbox, under a lease
// of its own so that no use starts while it goes.
func (o *checkpointOwner) delete(ctx actor.Context, msg *DeleteCheckpoint) {
	key := checkpointKey(msg.ID, msg.Name)
	o.holds.lastToken++
	token := ownerTokens | o.holds.lastToken
	if err := o.take(key, useDelete, token); err != nil {
		ctx.Respond(&DeleteCheckpointResult{Err: err})
		return
	}
	self, root, replyTo, store := ctx.Self(), ctx.ActorSystem().Root, ctx.Sender(), o.holds.store
	go func() {
		root.Send(self, &checkpointDeleted{key: key, token: token, replyTo: replyTo, err: store.Delete(msg.ID, msg.Name)})
	}()
}
