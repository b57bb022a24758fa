package runtime

import "github.com/troupe-run/troupe/errclass"

// The error classes, under the names the runtime's callers used before they
// moved to package errclass.
var (
	ErrNotFound           = errclass.NotFound
	ErrAlreadyExists      = errclass.AlreadyExists
	ErrInvalidArgument    = errclass.InvalidArgument
	ErrFailedPrecondition = errclass.FailedPrecondition
	ErrUnavailable        = errclass.Unavailable
)

// WithClass is errclass.With.
func WithClass(class, err error) error { return errclass.With(class, err) }
