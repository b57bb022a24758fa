// Package errclass holds troupe's five error classes. Every error that
// leaves the runtime, the actors or the API client wraps exactly one of
// them, so that a caller decides with errors.Is, whichever side of the wire
// it is on: the server maps each class to one status and one error code
// (package api), and the client maps the code back to the same class.
//
// It imports only the standard library, so that a light client can share it.
package errclass

import "errors"

var (
	// NotFound means the container, process, checkpoint or pool does not
	// exist.
	NotFound = errors.New("not found")
	// AlreadyExists means the id or name is already taken.
	AlreadyExists = errors.New("already exists")
	// InvalidArgument means the request itself is wrong: a bad id, a bad
	// bundle, a bad value. Retrying it unchanged cannot succeed.
	InvalidArgument = errors.New("invalid argument")
	// FailedPrecondition means the request is valid but the current state
	// forbids it, such as exec into a stopped container.
	FailedPrecondition = errors.New("failed precondition")
	// Unavailable means a facility the request needs is not available on
	// this machine or daemon (CRIU missing, a controller not mounted, a
	// daemon that does not answer).
	Unavailable = errors.New("unavailable")
)

// classError wraps a cause in a class without changing its message:
// errors.Is finds both the class and the original cause.
type classError struct {
	class error
	cause error
}

func (e *classError) Error() string   { return e.cause.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.cause} }

// With marks err as belonging to class, keeping err's message and chain. It
// returns nil for a nil err, and err itself when it has the class already.
func With(class, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, class) {
		return err
	}
	return &classError{class: class, cause: err}
}
