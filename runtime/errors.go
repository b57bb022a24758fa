package runtime

import "errors"

// The error classes of troupe. Every error that leaves the runtime (and the
// layers above it) wraps exactly one of these, so callers decide with
// errors.Is and the API maps each class to one status code in one place.
var (
	// ErrNotFound means the container, process or checkpoint does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means the id or name is already taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument means the request itself is wrong: a bad id, a bad
	// bundle, a bad value. Retrying it unchanged cannot succeed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition means the request is valid but the current state
	// forbids it, such as exec into a stopped container.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable means a facility the request needs is not available on
	// this machine or daemon (CRIU missing, a controller not mounted).
	ErrUnavailable = errors.New("unavailable")
)

// classError wraps a cause in an error class without changing its message:
// errors.Is finds both the class and the original cause.
type classError struct {
	class error
	cause error
}

func (e *classError) Error() string   { return e.cause.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.cause} }

// WithClass marks err as belonging to class, keeping err's message and chain.
// It returns nil for a nil err.
func WithClass(class, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, class) {
		return err
	}
	return &classError{class: class, cause: err}
}
