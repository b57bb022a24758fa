package api

// Attaching to a process's stdio: GET /containers/{id}/processes/{pid}/attach
// upgrades the connection to a WebSocket (RFC 6455) whose messages are all
// binary. The first byte of each names its stream; the rest is its
// payload:
//
//	0  stdin    client → daemon  bytes for the process's stdin
//	1  stdout   daemon → client  what the process wrote (a terminal: all of it)
//	2  stderr   daemon → client  what the process wrote to stderr
//	3  control  both ways        an AttachControl, in JSON
//
// The client sends "resize" and "close-stdin"; the daemon sends "dropped"
// (output lost while no client was attached: an attached one loses
// nothing, the process waits for it), "error" (a
// control message it refused; the connection stays) and, after all the
// output, "exit", then closes the WebSocket normally (1000). A client that
// closes first, or goes away, detaches: the process runs on, its output
// kept (up to a bound) for the next client. One client at a time: another
// attach meanwhile is refused (409).
const (
	StreamStdin   byte = 0
	StreamStdout  byte = 1
	StreamStderr  byte = 2
	StreamControl byte = 3
)

// The types of AttachControl.
const (
	ControlResize     = "resize"
	ControlCloseStdin = "close-stdin"
	ControlDropped    = "dropped"
	ControlError      = "error"
	ControlExit       = "exit"
)

// AttachControl is a control message of the attach protocol.
type AttachControl struct {
	Type string `json:"type"`
	// Width and Height are a resize's new size, in columns and rows.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Dropped is how many bytes of output were dropped before what comes
	// next.
	Dropped int64 `json:"dropped,omitempty"`
	// Error says why a control message was refused.
	Error string `json:"error,omitempty"`
	// Exit is how the process ended, in an "exit".
	Exit *ProcessExit `json:"exit,omitempty"`
}

// ProcessExit is how a process ended: the answer of GET
// /containers/{id}/processes/{pid}/wait, and of an attach's "exit".
type ProcessExit struct {
	// ExitCode is the exit code, or 128+signal when a signal killed it
	// (-1: unknown, for a process an earlier daemon started).
	ExitCode int `json:"exitCode"`
	// Signal names the signal that killed it ("SIGKILL"), if one did.
	Signal string `json:"signal,omitempty"`
}
