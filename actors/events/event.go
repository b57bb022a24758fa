package events

import "time"

// Type is the kind of an event. Its values are the "type" strings of the
// GET /events stream.
type Type string

// The lifecycle changes a container goes through, and the marker a subscriber
// receives in place of events it missed.
const (
	// Start is published when a container's init is running.
	Start Type = "start"
	// Exit is published when a container's init has exited; the container is
	// stopped.
	Exit Type = "exit"
	// Exec is published when an added process runs inside a container.
	Exec Type = "exec"
	// ProcessExit is published when an added process has exited.
	ProcessExit Type = "process-exit"
	// Pause is published when every process of a container is frozen.
	Pause Type = "pause"
	// Resume is published when a paused container is thawed.
	Resume Type = "resume"
	// Checkpoint is published when a checkpoint of a container is written.
	Checkpoint Type = "checkpoint"
	// Restore is published when a container is running again from a
	// checkpoint.
	Restore Type = "restore"
	// OOM is published when the kernel kills a process of a container for
	// want of memory.
	OOM Type = "oom"
	// Delete is published when a container and everything it left are gone.
	Delete Type = "delete"
	// Gap is never published: a subscription delivers it in place of events
	// it lost, so that a consumer knows its picture is incomplete.
	Gap Type = "gap"
)

// Event is one lifecycle change. The JSON field names are the API contract of
// GET /events; fields that do not apply are omitted.
//
// By convention Pid is the process concerned: the init for Start, Exit and
// Restore, the added process for Exec and ProcessExit. ExitStatus is set on
// Exit and ProcessExit.
type Event struct {
	// ID is the event's place in the log: 1 for the first event, one more for
	// each following one. On a Gap it is the id of the last event missed, so
	// that the ids a subscriber sees still increase strictly and a client
	// resuming with since=ID does not ask again for what it was told is lost.
	ID uint64 `json:"id"`
	// Type is the kind of change.
	Type Type `json:"type"`
	// Container is the id of the container concerned; empty on a Gap.
	Container string `json:"container,omitempty"`
	// Pid is the host pid of the process concerned, if any.
	Pid int `json:"pid,omitempty"`
	// ExitStatus is the exit status of the process that exited. It is a
	// pointer because 0 is a status worth sending.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Time is when the event was published (on a Gap, when the last missed
	// event was published, or when the subscription was made for a gap in
	// replay).
	Time time.Time `json:"time"`
	// From is set on a Gap: the id of the first event missed.
	From uint64 `json:"from,omitempty"`
	// Missed is set on a Gap: how many events were missed between From and ID.
	// For a subscription filtered by container it counts only that
	// container's events, except for a gap in replay (see [Filter]).
	Missed uint64 `json:"missed,omitempty"`
}
