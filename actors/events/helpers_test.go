package events_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
)

// waitTimeout bounds every wait on a subscription; far longer than any
// delivery takes, even under the race detector.
const waitTimeout = 10 * time.Second

// show renders an event compactly for comparisons: "5/a" is event 5 of
// container a, "gap 9-20 (12)" a gap from id 9 to id 20 of 12 events.
func show(e api.Event) string {
	if e.Type == api.EventGap {
		return fmt.Sprintf("gap %d-%d (%d)", e.From, e.ID, e.Missed)
	}
	return fmt.Sprintf("%d/%s", e.ID, e.Container)
}

// publish publishes n Start events for container, returning their ids.
func publish(t testing.TB, l *events.Log, n int, container string) []uint64 {
	t.Helper()
	ids := make([]uint64, 0, n)
	for range n {
		ids = append(ids, l.Publish(api.Event{Type: api.EventStart, Container: container}).ID)
	}
	return ids
}

// receive returns the next event of sub, failing the test if none comes or
// the channel is closed.
func receive(t testing.TB, sub *events.Subscription) api.Event {
	t.Helper()
	select {
	case e, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed while an event was expected")
		}
		return e
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
	}
	return api.Event{}
}

// receiveShown receives n events and renders them with show.
func receiveShown(t testing.TB, sub *events.Subscription, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for range n {
		got = append(got, show(receive(t, sub)))
	}
	return got
}

// expectShown fails the test unless sub delivers exactly want next.
func expectShown(t testing.TB, sub *events.Subscription, want []string) {
	t.Helper()
	if got := receiveShown(t, sub, len(want)); !slices.Equal(got, want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// expectNothingPending publishes a sentinel event for container and fails the
// test unless it is the very next thing sub delivers: anything queued or any
// gap still pending would come first.
func expectNothingPending(t testing.TB, l *events.Log, sub *events.Subscription, container string) {
	t.Helper()
	id := publish(t, l, 1, container)[0]
	expectShown(t, sub, []string{fmt.Sprintf("%d/%s", id, container)})
}

// expectClosed fails the test unless sub's channel is closed.
func expectClosed(t testing.TB, sub *events.Subscription) {
	t.Helper()
	select {
	case e, ok := <-sub.C():
		if ok {
			t.Fatalf("received %s from a closed subscription", show(e))
		}
	case <-time.After(waitTimeout):
		t.Fatal("subscription channel not closed")
	}
}

// settle waits until sub's queue is empty, which it is once its pump has
// released the event the test received last.
func settle(t testing.TB, sub *events.Subscription) {
	t.Helper()
	testutil.EventuallyWithin(t, waitTimeout, "the subscription's queue to empty", func() bool { return events.QueueLen(sub) == 0 })
}
