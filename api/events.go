package api

import "time"

// EventType is the kind of an event: its "type" in the GET /events stream.
type EventType string

// The lifecycle changes a container goes through, and the marker a
// subscriber receives in place of events it missed.
const (
	// EventStart: a container's init is running.
	EventStart EventType = "start"
	// EventExit: a container's init has exited; the container is stopped.
	EventExit EventType = "exit"
	// EventExec: an added process runs inside a container.
	EventExec EventType = "exec"
	// EventProcessExit: an added process has exited.
	EventProcessExit EventType = "process-exit"
	// EventPause: every process of a container is frozen.
	EventPause EventType = "pause"
	// EventResume: a paused container is thawed.
	EventResume EventType = "resume"
	// EventCheckpoint: a checkpoint of a container is written.
	EventCheckpoint EventType = "checkpoint"
	// EventRestore: a container runs again from a checkpoint.
	EventRestore EventType = "restore"
	// EventOOM: the kernel killed a process of a container for want of
	// memory.
	EventOOM EventType = "oom"
	// EventDelete: a container and everything it left are gone.
	EventDelete EventType = "delete"
	// EventGap is never published: a subscription delivers it in place of
	// events it lost, so that a consumer knows its picture is incomplete.
	EventGap EventType = "gap"
)

// Event is one lifecycle change, a line of GET /events (newline-delimited
// JSON, or server-sent events with Accept: text/event-stream). Fields that
// do not apply are left out.
//
// Pid is the process concerned: the init for start, exit and restore, the
// added process for exec and process-exit. ExitStatus is set on exit and
// process-exit.
type Event struct {
	// ID is the event's place in the daemon's log: 1 for the first event,
	// one more for each following one. On a gap it is the id of the last
	// event missed, so that the ids a subscriber sees still increase
	// strictly and a client resuming with since=ID does not ask again for
	// what it was told is lost.
	ID   uint64    `json:"id"`
	Type EventType `json:"type"`
	// Container is the id of the container concerned; empty on a gap.
	Container string `json:"container,omitempty"`
	// Pid is the host pid of the process concerned, if any.
	Pid int `json:"pid,omitempty"`
	// ExitStatus is the exit status of the process that exited. It is a
	// pointer because 0 is a status worth sending.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Time is when the event was published (on a gap, when the last missed
	// event was published, or when the subscription was made for a gap in
	// replay).
	Time time.Time `json:"time"`
	// From is set on a gap: the id of the first event missed.
	From uint64 `json:"from,omitempty"`
	// Missed is set on a gap: how many events were missed between From and
	// ID. For a subscription filtered by container it counts only that
	// container's events, except for a gap in replay.
	Missed uint64 `json:"missed,omitempty"`
}
