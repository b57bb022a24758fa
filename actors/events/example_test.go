package events_test

import (
	"fmt"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
)

func Example() {
	eventLog := events.New(events.Options{BufferSize: 2, SubscriberQueue: 2})
	defer eventLog.Close()

	status := 0
	eventLog.Publish(api.Event{Type: api.EventStart, Container: "redis", Pid: 11497})
	eventLog.Publish(api.Event{Type: api.EventPause, Container: "redis"})
	eventLog.Publish(api.Event{Type: api.EventResume, Container: "redis"})

	// A client that last saw id 0 asks for what it missed: the buffer of 2
	// has forgotten event 1, so replay starts with a gap.
	sub := eventLog.Subscribe(events.Filter{Container: "redis", Replay: true, Since: 0})
	defer sub.Close()
	eventLog.Publish(api.Event{Type: api.EventExit, Container: "redis", Pid: 11497, ExitStatus: &status})

	for range 4 {
		e := <-sub.C()
		switch e.Type {
		case api.EventGap:
			fmt.Printf("%d gap: missed %d from %d\n", e.ID, e.Missed, e.From)
		case api.EventExit:
			fmt.Printf("%d %s %s status %d\n", e.ID, e.Type, e.Container, *e.ExitStatus)
		default:
			fmt.Printf("%d %s %s\n", e.ID, e.Type, e.Container)
		}
	}
	// Output:
	// 1 gap: missed 1 from 1
	// 2 pause redis
	// 3 resume redis
	// 4 exit redis status 0
}
