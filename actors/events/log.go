package events

import (
	"sync"
	"time"

	"github.com/troupe-run/troupe/api"
)

// Default sizes used when an [Options] field is zero or negative.
const (
	// DefaultBufferSize is how many recent events a log keeps for replay.
	DefaultBufferSize = 4096
	// DefaultSubscriberQueue is how many events a subscription holds for a
	// consumer that has not read them yet.
	DefaultSubscriberQueue = 1024
)

// Options size a [Log].
type Options struct {
	// BufferSize is how many recent events the log keeps for replay; the
	// oldest is forgotten when a new one arrives. Default DefaultBufferSize.
	BufferSize int
	// SubscriberQueue is how many undelivered events each subscription holds
	// before it starts dropping (and counting) them. Replayed events do not
	// count against it. Default DefaultSubscriberQueue.
	SubscriberQueue int
}

// Log numbers lifecycle events, keeps the most recent ones for replay and fans
// every event out to its subscriptions. The zero value is not usable; make one
// with [New]. Methods are safe for concurrent use.
type Log struct {
	queue int

	// mu serialises publishing and subscribing: numbering, storing and
	// fanning out an event happen as one step, which is what makes ids
	// dense, gives every subscription the same order, and lets Subscribe
	// cut replay from live delivery at an exact id.
	mu     sync.Mutex
	buf    ring
	last   uint64
	subs   []*Subscription
	closed bool
}

// New returns an empty log; its first event gets id 1.
func New(o Options) *Log {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.SubscriberQueue <= 0 {
		o.SubscriberQueue = DefaultSubscriberQueue
	}
	return &Log{queue: o.SubscriberQueue, buf: newRing(o.BufferSize)}
}

// Publish gives e the next id, and the current time if e.Time is zero, stores
// it and offers it to every subscription. It never waits for a subscriber: a
// subscription with a full queue drops the event and tells its consumer later
// with a Gap. Publish returns the event as stored. The Gap-only fields (From,
// Missed) are the log's to set and are cleared. Publishing after Close still
// numbers and stores events, so ids stay dense; nobody receives them.
func (l *Log) Publish(e api.Event) api.Event {
	if e.ExitStatus != nil {
		// Subscribers share the stored event; the caller keeps its pointer.
		status := *e.ExitStatus
		e.ExitStatus = &status
	}
	e.From, e.Missed = 0, 0

	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	e.ID = l.last
	if e.Time.IsZero() {
		// Read under the lock so that times follow ids.
		e.Time = time.Now()
	}
	if l.buf.full() {
		l.buf.pop()
	}
	l.buf.push(e)
	for _, s := range l.subs {
		s.offer(e)
	}
	return e
}

// Subscribe returns a subscription to the events that match f: first, if
// f.Replay, the buffered ones after f.Since, then every one published after
// Subscribe returns, with no event lost or repeated between the two. The
// caller must Close the subscription. After Close of the log, Subscribe
// returns a subscription whose channel is already closed.
func (l *Log) Subscribe(f Filter) *Subscription {
	s := newSubscription(l, f)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		s.closeAtBirth()
		return s
	}
	if f.Replay {
		s.replay = l.replayLocked(f)
	}
	l.subs = append(l.subs, s)
	l.mu.Unlock()
	go s.pump()
	return s
}

// LastID returns the id of the latest event published, 0 if none.
func (l *Log) LastID() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Close closes every subscription, which closes their channels, and makes
// later subscriptions closed from the start. It returns once every
// subscription has released its goroutine.
func (l *Log) Close() {
	l.mu.Lock()
	l.closed = true
	subs := l.subs
	l.subs = nil
	l.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// replayLocked returns what a new subscription with filter f replays: a Gap
// for the events after f.Since that the buffer has already forgotten, then
// the buffered events after f.Since that match f. The caller holds l.mu.
func (l *Log) replayLocked(f Filter) []api.Event {
	if f.Since >= l.last {
		// Nothing after Since; this also covers an id from an earlier run of
		// the daemon, which numbers from 1 again.
		return nil
	}
	n := l.buf.len()
	oldest := l.last - uint64(n) + 1
	var out []api.Event
	start := 0
	if f.Since+1 < oldest {
		// The forgotten events' containers are unknown, so this gap counts all
		// of them, whatever f.Container.
		out = append(out, api.Event{
			ID:     oldest - 1,
			Type:   api.EventGap,
			Time:   time.Now(),
			From:   f.Since + 1,
			Missed: oldest - 1 - f.Since,
		})
	} else {
		start = int(f.Since + 1 - oldest)
	}
	for i := start; i < n; i++ {
		if e := l.buf.at(i); f.match(e) {
			out = append(out, e)
		}
	}
	return out
}

// remove forgets s so that Publish stops offering it events.
func (l *Log) remove(s *Subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, t := range l.subs {
		if t == s {
			last := len(l.subs) - 1
			l.subs[i] = l.subs[last]
			l.subs[last] = nil
			l.subs = l.subs[:last]
			return
		}
	}
}
