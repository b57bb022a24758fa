// Package http serves troupe's REST API with gin: the contract that package
// api defines, and that is its reference (containers, processes, signals,
// pause and resume, state, events, stats, logs, checkpoints, warm pools,
// images (pulls streamed as lines of JSON, starts from images),
// health, version, metrics).
//
// Handlers only decode, validate and send messages to the actors through an
// [actors.Supervisor]; no container logic lives here. Every error carries a
// class from package errclass, and answerOf maps a class to its status and
// api.ErrorCode in one place (package client maps the code back):
//
//	invalid argument      400 invalid_argument     malformed JSON, unknown field, bad id or value
//	(token)               401 unauthorized         missing or wrong bearer token
//	not found             404 not_found            unknown container, process or checkpoint
//	already exists        409 already_exists       id taken
//	failed precondition   409 failed_precondition  a transition the state forbids
//	(body)                413 too_large            body over 1 MiB
//	unavailable           503 unavailable          a facility this daemon lacks (a CRIU
//	                                               that failed its self-test, or is still in it)
//	deadline exceeded     504 deadline_exceeded    CRIU overstayed its deadline and was killed
//	anything else         500 internal             the runtime failed; the message says why
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
