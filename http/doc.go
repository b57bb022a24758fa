// Package http serves troupe's REST API v1 with gin: the contract of
// docs/api-v1 (containers, processes, signals, pause and resume, state,
// events, stats, logs, health, version, metrics).
//
// Handlers only decode, validate and send messages to the actors through an
// [actors.Supervisor]; no container logic lives here. Every error carries a
// class from package runtime, and statusOf maps classes to status codes in
// one place:
//
//	invalid argument      400   malformed JSON, unknown field, bad id or value
//	(token)               401   missing or wrong bearer token
//	not found             404   unknown container, process or checkpoint
//	already exists,
//	failed precondition   409   id taken, or a transition the state forbids
//	(body)                413   body over 1 MiB
//	unavailable           503   a facility this daemon lacks (a CRIU that
//	                            failed its self-test, or is still in it)
//	deadline exceeded     504   CRIU overstayed its deadline and was killed
//	anything else         500   the runtime failed; the message says why
//
// Bodies are decoded strictly: unknown fields are refused with 400 naming the
// field, and an empty body means {}. A body that stops coming for
// BodyIdleTimeout is refused with 400 and its connection closed; a slow one
// that keeps coming, such as a large checkpoint archive, is not.
//
// [Server.HTTPServer] is the net/http server of the API, with timeouts for
// headers and idle connections; [LimitConnections] bounds the connections
// it serves at once over all listeners.
//
// [Listen] opens the daemon's listeners: a unix socket (0660) by default, and
// TCP once a bearer token is configured; without one only on loopback, and
// only when the operator insists ([ListenOptions].InsecureTCP): loopback is
// open to every local user and every container on the host network.
//
// Package client, below this one, is the Go client of the same API.
package http
