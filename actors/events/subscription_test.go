package events_test

import (
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
)

func TestSlowSubscriber(t *testing.T) {
	// A step publishes n events (ids follow on), alternating between
	// containers a and b when alternate is set, then expects want, then
	// with settle waits for the queue to release the last event received.
	// The subscription's queue holds 8.
	type step struct {
		publish   int
		alternate bool
		want      []string
		settle    bool
	}
	tests := []struct {
		name   string
		filter events.Filter
		steps  []step
	}{
		{
			name: "gap once drained, without waiting for the next event",
			steps: []step{
				{publish: 20, want: []string{"1/a", "2/a", "3/a", "4/a", "5/a", "6/a", "7/a", "8/a", "gap 9-20 (12)"}},
				{publish: 1, want: []string{"21/a"}},
			},
		},
		{
			name: "room for the gap and the next event",
			steps: []step{
				{publish: 20, want: []string{"1/a", "2/a", "3/a", "4/a"}},
				{publish: 2, want: []string{"5/a", "6/a", "7/a", "8/a", "gap 9-20 (12)", "21/a", "22/a"}},
			},
		},
		{
			name: "no room for the gap and the next event",
			steps: []step{
				{publish: 20, want: []string{"1/a"}},
				{publish: 1, want: []string{"2/a", "3/a", "4/a", "5/a", "6/a", "7/a", "8/a", "gap 9-21 (13)"}},
				{publish: 1, want: []string{"22/a"}},
			},
		},
		{
			name: "two gaps",
			steps: []step{
				{publish: 10, want: []string{"1/a", "2/a", "3/a", "4/a", "5/a", "6/a", "7/a", "8/a", "gap 9-10 (2)"}, settle: true},
				{publish: 10, want: []string{"11/a", "12/a", "13/a", "14/a", "15/a", "16/a", "17/a", "18/a", "gap 19-20 (2)"}},
			},
		},
		{
			name: "exactly full loses nothing",
			steps: []step{
				{publish: 8, want: []string{"1/a", "2/a", "3/a", "4/a", "5/a", "6/a", "7/a", "8/a"}},
			},
		},
		{
			name:   "gap counts only the container's events",
			filter: events.Filter{Container: "a"},
			steps: []step{
				{publish: 30, alternate: true, want: []string{"1/a", "3/a", "5/a", "7/a", "9/a", "11/a", "13/a", "15/a", "gap 17-29 (7)"}},
				{publish: 2, alternate: true, want: []string{"31/a"}},
			},
		},
		{
			name:   "other containers never fill the queue",
			filter: events.Filter{Container: "b"},
			steps: []step{
				{publish: 16, alternate: true, want: []string{"2/b", "4/b", "6/b", "8/b", "10/b", "12/b", "14/b", "16/b"}},
			},
		},
		{
			name:   "replay does not count against the queue",
			filter: events.Filter{Replay: true},
			steps: []step{
				// The log already holds 1..10 when the subscription is made.
				{publish: 8, want: []string{"1/a", "2/a", "3/a", "4/a", "5/a", "6/a", "7/a", "8/a", "9/a", "10/a", "11/a", "12/a", "13/a", "14/a", "15/a", "16/a", "17/a", "18/a"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := events.New(events.Options{SubscriberQueue: 8})
			defer l.Close()
			if tt.filter.Replay {
				publish(t, l, 10, "a")
			}
			sub := l.Subscribe(tt.filter)
			defer sub.Close()
			for _, s := range tt.steps {
				for range s.publish {
					container := "a"
					if s.alternate && l.LastID()%2 == 1 {
						container = "b"
					}
					publish(t, l, 1, container)
				}
				expectShown(t, sub, s.want)
				if s.settle {
					settle(t, sub)
				}
			}
			sentinel := tt.filter.Container
			if sentinel == "" {
				sentinel = "a"
			}
			expectNothingPending(t, l, sub, sentinel)
		})
	}
}

// TestStuckSubscriber checks that a subscriber that never reads costs the
// publisher and the other subscribers nothing.
func TestStuckSubscriber(t *testing.T) {
	const queue = 64
	const batch = queue / 2
	const total = 200 * batch
	l := events.New(events.Options{SubscriberQueue: queue})
	defer l.Close()
	stuck := l.Subscribe(events.Filter{})
	defer stuck.Close()
	reader := l.Subscribe(events.Filter{})
	defer reader.Close()

	// The reader reports each event; the publisher waits for each batch to be
	// read so that the reader, unlike the stuck subscriber, never falls a
	// queue behind and must receive everything.
	var mu sync.Mutex
	var received []api.Event
	read := make(chan struct{}, total)
	go func() {
		for e := range reader.C() {
			mu.Lock()
			received = append(received, e)
			mu.Unlock()
			read <- struct{}{}
		}
	}()

	start := time.Now()
	var inPublish, slowest time.Duration
	for range total / batch {
		for range batch {
			t0 := time.Now()
			l.Publish(api.Event{Type: api.EventStart, Container: "a"})
			d := time.Since(t0)
			inPublish += d
			slowest = max(slowest, d)
		}
		for range batch {
			select {
			case <-read:
			case <-time.After(waitTimeout):
				t.Fatalf("the reader is stuck too: %d events read", len(received))
			}
		}
	}
	t.Logf("%d events in %v, %v of it in Publish, slowest Publish %v", total, time.Since(start), inPublish, slowest)
	if inPublish > 5*time.Second {
		t.Errorf("publishing %d events took %v", total, inPublish)
	}

	mu.Lock()
	for i, e := range received {
		if e.ID != uint64(i+1) || e.Type == api.EventGap {
			mu.Unlock()
			t.Fatalf("reader: event %d is %s, want id %d", i, show(e), i+1)
		}
	}
	mu.Unlock()

	// The stuck subscriber has kept the first queue's worth and counted the rest.
	for want := uint64(1); want <= queue; want++ {
		if e := receive(t, stuck); e.ID != want || e.Type != api.EventStart {
			t.Fatalf("stuck: received %s, want id %d", show(e), want)
		}
	}
	gap := receive(t, stuck)
	if gap.Type != api.EventGap || gap.From != queue+1 || gap.ID != total || gap.Missed != total-queue {
		t.Fatalf("stuck: received %s, want gap %d-%d (%d)", show(gap), queue+1, total, total-queue)
	}
}

// TestPublishNeverWaits publishes far more than the queues hold to
// subscribers that never read, from several goroutines.
func TestPublishNeverWaits(t *testing.T) {
	l := events.New(events.Options{BufferSize: 16, SubscriberQueue: 1})
	defer l.Close()
	for range 10 {
		sub := l.Subscribe(events.Filter{})
		defer sub.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { publish(t, l, 25000, "a") })
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("publishing to stuck subscribers did not finish")
	}
}
