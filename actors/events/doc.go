// Package events is troupe's lifecycle event log: every start, exit, exec,
// process exit, pause, resume, checkpoint, restore, OOM kill and delete gets
// an id and is fanned out to subscribers such as GET /events.
//
// # Publishing
//
// A [Log] numbers events 1, 2, 3, … with no holes, even with many publishers
// at once, and keeps the most recent ones (Options.BufferSize) for replay.
// Publish never waits for a subscriber, so an actor can publish from its
// Receive without risking its mailbox:
//
//	eventLog := events.New(events.Options{})
//	defer eventLog.Close()
//	status := 0
//	eventLog.Publish(api.Event{Type: api.EventExit, Container: "redis", Pid: 11497, ExitStatus: &status})
//
// # Subscribing
//
// Each [Subscription] has its own bounded queue and a channel that is closed
// when the subscription or the log is closed, so a streaming handler is one
// select loop with nothing to leak once it returns:
//
//	sub := eventLog.Subscribe(events.Filter{Container: "redis", Replay: true, Since: lastSeen})
//	defer sub.Close()
//	for {
//		select {
//		case e, ok := <-sub.C():
//			if !ok {
//				return // the daemon is shutting down
//			}
//			_ = enc.Encode(e)
//			flusher.Flush()
//		case <-ctx.Done():
//			return
//		}
//	}
//
// With Replay, the subscription first delivers the buffered events after
// Since, then the live ones, with nothing lost or repeated between the two.
// Without it, it starts with the next event published. A subscription owns a
// goroutine and its queue until Close (or the log's Close): always defer it.
//
// # Gaps
//
// Nothing is lost silently. A subscriber that falls further behind than
// Options.SubscriberQueue loses events, only for itself, and receives a
// [Gap] in their place once it has read what came before: From and ID are
// the first and last ids missed and Missed how many. A replay that asks for
// events the buffer has already forgotten starts with a Gap too. The ids a
// subscriber receives, Gaps included, always increase strictly, so "the last
// id received" is the right since for a reconnect; a consumer that wants the
// missed events back may try since=From-1, as long as they are still
// buffered.
package events
