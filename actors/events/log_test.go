package events_test

import (
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
)

func TestPublishConcurrentIDsAreDense(t *testing.T) {
	const publishers, each = 16, 500
	const total = publishers * each
	l := events.New(events.Options{BufferSize: total, SubscriberQueue: total})
	defer l.Close()
	sub := l.Subscribe(events.Filter{})
	defer sub.Close()

	ids := make(chan uint64, total)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for _, id := range publish(t, l, each, fmt.Sprint("c", p)) {
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)

	returned := make([]uint64, 0, total)
	for id := range ids {
		returned = append(returned, id)
	}
	slices.Sort(returned)
	for i, id := range returned {
		if id != uint64(i+1) {
			t.Fatalf("returned ids: position %d holds %d, want %d (a hole or a repeat)", i, id, i+1)
		}
	}
	if got := l.LastID(); got != total {
		t.Errorf("LastID = %d, want %d", got, total)
	}
	// Every subscriber sees the same order: the ids in order of publication.
	var prev time.Time
	for want := uint64(1); want <= total; want++ {
		e := receive(t, sub)
		if e.ID != want {
			t.Fatalf("subscriber received id %d, want %d", e.ID, want)
		}
		if e.Time.Before(prev) {
			t.Fatalf("event %d has time %v before its predecessor's %v", e.ID, e.Time, prev)
		}
		prev = e.Time
	}
}

func TestPublish(t *testing.T) {
	l := events.New(events.Options{})
	defer l.Close()
	if got := l.LastID(); got != 0 {
		t.Fatalf("LastID of an empty log = %d, want 0", got)
	}

	status := 137
	given := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		event    api.Event
		wantID   uint64
		keepTime bool
	}{
		{name: "time set when zero", event: api.Event{Type: api.EventStart, Container: "a", Pid: 1}, wantID: 1},
		{name: "time kept when given", event: api.Event{Type: api.EventPause, Container: "a", Time: given}, wantID: 2, keepTime: true},
		{name: "id given by caller ignored", event: api.Event{ID: 99, Type: api.EventResume, Container: "a"}, wantID: 3},
		{name: "gap fields cleared", event: api.Event{Type: api.EventExec, Container: "a", From: 5, Missed: 7}, wantID: 4},
		{name: "exit status", event: api.Event{Type: api.EventExit, Container: "a", ExitStatus: &status}, wantID: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			got := l.Publish(tt.event)
			if got.ID != tt.wantID {
				t.Errorf("ID = %d, want %d", got.ID, tt.wantID)
			}
			if tt.keepTime && !got.Time.Equal(tt.event.Time) {
				t.Errorf("Time = %v, want the given %v", got.Time, tt.event.Time)
			}
			if !tt.keepTime && got.Time.Before(before) {
				t.Errorf("Time = %v, want now (after %v)", got.Time, before)
			}
			if got.From != 0 || got.Missed != 0 {
				t.Errorf("From, Missed = %d, %d, want 0, 0", got.From, got.Missed)
			}
			if got.Type != tt.event.Type || got.Container != tt.event.Container || got.Pid != tt.event.Pid {
				t.Errorf("stored %+v, want the fields of %+v", got, tt.event)
			}
			if l.LastID() != tt.wantID {
				t.Errorf("LastID = %d, want %d", l.LastID(), tt.wantID)
			}
		})
	}

	t.Run("exit status copied", func(t *testing.T) {
		sub := l.Subscribe(events.Filter{Replay: true, Since: 4})
		defer sub.Close()
		status = 0 // the publisher reusing its variable must not change the log
		e := receive(t, sub)
		if e.ExitStatus == nil || *e.ExitStatus != 137 {
			t.Fatalf("replayed exit status = %v, want 137", e.ExitStatus)
		}
	})
}

func TestReplay(t *testing.T) {
	// A buffer of 4 after 8 events alternating between containers a (odd ids)
	// and b (even ids) holds 5/a, 6/b, 7/a, 8/b.
	tests := []struct {
		name   string
		filter events.Filter
		want   []string
	}{
		{name: "no replay", filter: events.Filter{}, want: nil},
		{name: "no replay ignores since", filter: events.Filter{Since: 2}, want: nil},
		{name: "since 0 is everything buffered", filter: events.Filter{Replay: true}, want: []string{"gap 1-4 (4)", "5/a", "6/b", "7/a", "8/b"}},
		{name: "since forgotten", filter: events.Filter{Replay: true, Since: 2}, want: []string{"gap 3-4 (2)", "5/a", "6/b", "7/a", "8/b"}},
		{name: "since just before oldest", filter: events.Filter{Replay: true, Since: 4}, want: []string{"5/a", "6/b", "7/a", "8/b"}},
		{name: "since buffered", filter: events.Filter{Replay: true, Since: 6}, want: []string{"7/a", "8/b"}},
		{name: "since last", filter: events.Filter{Replay: true, Since: 8}, want: nil},
		{name: "since in the future", filter: events.Filter{Replay: true, Since: 1000}, want: nil},
		{name: "since max", filter: events.Filter{Replay: true, Since: ^uint64(0)}, want: nil},
		{name: "container", filter: events.Filter{Container: "a", Replay: true, Since: 4}, want: []string{"5/a", "7/a"}},
		// The forgotten events' containers are unknown: the gap counts them all.
		{name: "container since forgotten", filter: events.Filter{Container: "b", Replay: true}, want: []string{"gap 1-4 (4)", "6/b", "8/b"}},
		{name: "container since buffered", filter: events.Filter{Container: "b", Replay: true, Since: 6}, want: []string{"8/b"}},
		{name: "unknown container", filter: events.Filter{Container: "z", Replay: true, Since: 4}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := events.New(events.Options{BufferSize: 4})
			defer l.Close()
			for range 4 {
				publish(t, l, 1, "a")
				publish(t, l, 1, "b")
			}
			sub := l.Subscribe(tt.filter)
			defer sub.Close()
			expectShown(t, sub, tt.want)
			sentinel := tt.filter.Container
			if sentinel == "" {
				sentinel = "a"
			}
			expectNothingPending(t, l, sub, sentinel)
		})
	}
}

func TestReplayEmptyLog(t *testing.T) {
	l := events.New(events.Options{})
	defer l.Close()
	sub := l.Subscribe(events.Filter{Replay: true})
	defer sub.Close()
	expectNothingPending(t, l, sub, "a")
}

// TestSubscribeDuringPublish checks the cut between replay and live delivery:
// subscriptions made while events are being published see every event after
// their starting point exactly once, in order.
func TestSubscribeDuringPublish(t *testing.T) {
	const publishers, each = 8, 500
	const total = publishers * each
	l := events.New(events.Options{BufferSize: total + 1, SubscriberQueue: total + 1})
	defer l.Close()

	type subscribed struct {
		sub   *events.Subscription
		first uint64 // the first id it must receive; 0 for live only, which starts anywhere
	}
	var subs []subscribed
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() { publish(t, l, each, fmt.Sprint("c", p)) })
	}
	for i := 0; i < 60 && l.LastID() < total; i++ {
		switch i % 3 {
		case 0:
			subs = append(subs, subscribed{l.Subscribe(events.Filter{Replay: true}), 1})
		case 1:
			since := l.LastID()
			subs = append(subs, subscribed{l.Subscribe(events.Filter{Replay: true, Since: since}), since + 1})
		case 2:
			subs = append(subs, subscribed{l.Subscribe(events.Filter{}), 0})
		}
		time.Sleep(50 * time.Microsecond) // spread the subscriptions over the publishing
	}
	wg.Wait()
	defer func() {
		for _, s := range subs {
			s.sub.Close()
		}
	}()

	// One more event gives every live-only subscription a starting point.
	last := publish(t, l, 1, "sentinel")[0]
	for i, s := range subs {
		want := s.first
		if want == 0 {
			e := receive(t, s.sub)
			if e.Type == api.EventGap {
				t.Fatalf("subscription %d: received %s", i, show(e))
			}
			want = e.ID + 1
		}
		for ; want <= last; want++ {
			if e := receive(t, s.sub); e.ID != want || e.Type == api.EventGap {
				t.Fatalf("subscription %d: received %s, want id %d", i, show(e), want)
			}
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("subscription", func(t *testing.T) {
		l := events.New(events.Options{})
		defer l.Close()
		sub := l.Subscribe(events.Filter{})
		other := l.Subscribe(events.Filter{})
		defer other.Close()
		publish(t, l, 3, "a") // queued, never read: Close discards them
		sub.Close()
		expectClosed(t, sub)
		sub.Close() // idempotent
		// The others go on.
		expectShown(t, other, []string{"1/a", "2/a", "3/a"})
		expectNothingPending(t, l, other, "a")
	})
	t.Run("log", func(t *testing.T) {
		l := events.New(events.Options{SubscriberQueue: 2})
		subs := []*events.Subscription{
			l.Subscribe(events.Filter{}),
			l.Subscribe(events.Filter{Container: "a", Replay: true}),
			l.Subscribe(events.Filter{Container: "b"}),
		}
		publish(t, l, 5, "a") // the first two subscriptions block on a full queue
		l.Close()
		for _, s := range subs {
			expectClosed(t, s)
			s.Close() // after the log's Close: a no-op
		}
		l.Close() // idempotent

		late := l.Subscribe(events.Filter{Replay: true})
		expectClosed(t, late)
		late.Close()
		if got := l.Publish(api.Event{Type: api.EventDelete, Container: "a"}).ID; got != 6 {
			t.Errorf("Publish after Close: id %d, want 6", got)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		l := events.New(events.Options{SubscriberQueue: 1})
		subs := make([]*events.Subscription, 50)
		for i := range subs {
			subs[i] = l.Subscribe(events.Filter{})
		}
		var wg sync.WaitGroup
		wg.Go(func() { publish(t, l, 100, "a") })
		for _, s := range subs {
			wg.Go(s.Close)
			wg.Go(s.Close)
		}
		wg.Go(l.Close)
		wg.Wait()
		for _, s := range subs {
			expectClosed(t, s)
		}
	})
}

func TestCloseReleasesGoroutines(t *testing.T) {
	before := settledGoroutines()
	l := events.New(events.Options{SubscriberQueue: 4})
	var subs []*events.Subscription
	for i := range 100 {
		subs = append(subs, l.Subscribe(events.Filter{Container: fmt.Sprint("c", i%3), Replay: i%2 == 0}))
	}
	// Leave pumps in every state: blocked handing out an event, holding a
	// pending gap, idle.
	publish(t, l, 10, "c0")
	publish(t, l, 2, "c1")
	if during := goruntime.NumGoroutine(); during < before+len(subs) {
		t.Fatalf("%d goroutines with %d subscriptions, %d before: expected one per subscription", during, len(subs), before)
	}
	for _, s := range subs[:50] {
		s.Close()
	}
	l.Close() // the other 50
	// Close returns once a pump has closed its channel, a moment before the
	// goroutine is gone.
	testutil.EventuallyWithin(t, waitTimeout, fmt.Sprintf("the pumps' goroutines to end (%d before)", before), func() bool {
		return goruntime.NumGoroutine() <= before
	})
}

// BenchmarkPublish measures Publish with subscribers that read everything as
// fast as they can (with more subscribers than CPUs, their scheduling shows in
// the figure) and with subscribers that never read, whose cost is only their
// share of the fan-out.
// settledGoroutines returns the number of goroutines once those of earlier
// tests have finished exiting: the count has stayed the same for a while.
func settledGoroutines() int {
	n, stable := goruntime.NumGoroutine(), 0
	for stable < 5 {
		time.Sleep(10 * time.Millisecond)
		if m := goruntime.NumGoroutine(); m != n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
	return n
}

func BenchmarkPublish(b *testing.B) {
	for _, bb := range []struct {
		subscribers int
		reading     bool
	}{{0, true}, {1, true}, {100, true}, {100, false}} {
		name := fmt.Sprintf("subscribers=%d", bb.subscribers)
		if !bb.reading {
			name += "/stuck"
		}
		b.Run(name, func(b *testing.B) {
			l := events.New(events.Options{})
			var wg sync.WaitGroup
			for range bb.subscribers {
				sub := l.Subscribe(events.Filter{})
				if bb.reading {
					wg.Go(func() {
						for range sub.C() {
						}
					})
				}
			}
			status := 0
			e := api.Event{Type: api.EventExit, Container: "bench", Pid: 1, ExitStatus: &status}
			b.ReportAllocs()
			for b.Loop() {
				l.Publish(e)
			}
			b.StopTimer()
			l.Close()
			wg.Wait()
		})
	}
}
