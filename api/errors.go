package api

// Error is the body of every error answer: what went wrong, with the name
// or value involved, and a code a program can switch on.
type Error struct {
	Error string    `json:"error"`
	Code  ErrorCode `json:"code"`
}

// ErrorCode classifies an error answer. Each HTTP status has one or two
// codes; 409 has two, so that a client tells a taken name from a state that
// forbids the request without reading the message.
type ErrorCode string

// The error codes, with the status each comes with.
const (
	InvalidArgument    ErrorCode = "invalid_argument"    // 400: malformed JSON, unknown field, bad id or value
	Unauthorized       ErrorCode = "unauthorized"        // 401: missing or wrong bearer token
	NotFound           ErrorCode = "not_found"           // 404: unknown container, process, checkpoint, pool or image
	AlreadyExists      ErrorCode = "already_exists"      // 409: the id or name is taken
	FailedPrecondition ErrorCode = "failed_precondition" // 409: a transition the current state forbids; an image in use
	MethodNotAllowed   ErrorCode = "method_not_allowed"  // 405: the path has no such method
	TooLarge           ErrorCode = "too_large"           // 413: a body over its limit
	Unavailable        ErrorCode = "unavailable"         // 503: a facility this daemon lacks (CRIU)
	DeadlineExceeded   ErrorCode = "deadline_exceeded"   // 504: CRIU overstayed its deadline and was killed
	NoSpace            ErrorCode = "no_space"            // 507: the daemon's disk (or quota) is full: a pull, an import, a checkpoint
	Internal           ErrorCode = "internal"            // 500: the runtime failed; the message says why
)
