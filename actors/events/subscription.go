package events

import (
	"sync"

	"github.com/troupe-run/troupe/api"
)

// Filter selects what a subscription receives.
type Filter struct {
	// Container limits the subscription to one container's events; empty
	// means every container. Gap markers are always delivered.
	Container string
	// Replay asks for the buffered events with an id greater than Since
	// before the live ones, like Docker's "since". Without it the
	// subscription starts with the next event published.
	//
	// If the buffer has already forgotten some of the events after Since,
	// replay starts with a Gap covering Since+1 up to the oldest buffered id
	// minus one. The log no longer knows which containers those events
	// concerned, so that Gap's Missed counts all of them, even for a
	// subscription filtered by container. A Since at or beyond the last id
	// replays nothing: ids start again at 1 when the daemon restarts.
	Replay bool
	// Since is the id of the last event the subscriber already has; used
	// only with Replay. Since 0 with Replay means everything buffered.
	Since uint64
}

func (f Filter) match(e api.Event) bool {
	return f.Container == "" || e.Container == f.Container
}

// Subscription is one consumer's view of a [Log]: its own bounded queue, fed
// by Publish without waiting, and a goroutine that hands the queue out on
// [Subscription.C]. Close it when done.
//
// When the queue is full, events for this subscription are dropped and
// counted, and the consumer receives a Gap in their place as soon as it
// has read what was queued before them; then the following events. The
// goroutine is what makes that prompt: the Gap does not have to wait for
// another event to be published.
type Subscription struct {
	log    *Log
	filter Filter
	c      chan api.Event
	wake   chan struct{}
	done   chan struct{}
	exited chan struct{}
	once   sync.Once

	// replay is set before the pump starts and read only by the pump.
	replay []api.Event

	mu    sync.Mutex
	queue ring
	// gap counts the events dropped since the queue was last full and not
	// yet queued as a Gap; gap.Missed == 0 means none.
	gap api.Event
	// idle is set while the pump waits for a wake-up, so that Publish pays
	// for a channel send only when the pump actually sleeps.
	idle bool
}

func newSubscription(l *Log, f Filter) *Subscription {
	return &Subscription{
		log:    l,
		filter: f,
		c:      make(chan api.Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		queue:  newRing(l.queue),
	}
}

// C returns the channel that delivers the subscription's events in id order.
// It is closed by Close, or by Close of the log; events still queued then are
// discarded.
func (s *Subscription) C() <-chan api.Event {
	return s.c
}

// Close stops the subscription, closes its channel and returns once its
// goroutine has exited. It may be called more than once and concurrently.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.log.remove(s)
		close(s.done)
	})
	<-s.exited
}

// closeAtBirth makes s a subscription whose channel is closed and that has no
// goroutine, for a log that is closed.
func (s *Subscription) closeAtBirth() {
	close(s.c)
	close(s.exited)
}

// offer queues e if it matches the filter, or counts it as missed if the
// queue is full. It is called by Publish with the log's lock held and so must
// never wait for the consumer.
func (s *Subscription) offer(e api.Event) {
	if !s.filter.match(e) {
		return
	}
	s.mu.Lock()
	switch {
	case s.gap.Missed > 0 && s.queue.len()+2 <= s.queue.limit:
		// The consumer has made room: the Gap goes first, then e.
		s.queue.push(s.gap)
		s.gap = api.Event{}
		s.queue.push(e)
	case s.gap.Missed > 0:
		s.gap.ID = e.ID
		s.gap.Time = e.Time
		s.gap.Missed++
	case s.queue.full():
		s.gap = api.Event{ID: e.ID, Type: api.EventGap, Time: e.Time, From: e.ID, Missed: 1}
	default:
		s.queue.push(e)
	}
	wake := s.idle && s.queue.len() > 0
	if wake {
		s.idle = false
	}
	s.mu.Unlock()
	if wake {
		// Never blocks: the buffer of one is empty whenever idle was set.
		s.wake <- struct{}{}
	}
}

// pump hands the replay and then the queue out on s.c until Close.
func (s *Subscription) pump() {
	defer close(s.exited)
	defer close(s.c)
	for _, e := range s.replay {
		select {
		case s.c <- e:
		case <-s.done:
			return
		}
	}
	s.replay = nil
	sent := false
	for {
		e, ok := s.next(sent)
		sent = false
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.c <- e:
			sent = true
		case <-s.done:
			return
		}
	}
}

// next returns the event at the head of the queue without removing it, after
// removing the previous head if it was sent. An event stays queued until the
// consumer has taken it so that the queue bound is exactly what a consumer
// can fall behind by. When the queue is empty, a pending Gap is queued: the
// consumer has read everything that came before the events it missed.
func (s *Subscription) next(popSent bool) (api.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if popSent {
		s.queue.pop()
	}
	if s.queue.len() == 0 {
		if s.gap.Missed == 0 {
			s.idle = true
			return api.Event{}, false
		}
		s.queue.push(s.gap)
		s.gap = api.Event{}
	}
	return s.queue.at(0), true
}
