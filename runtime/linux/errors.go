package linux

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/troupe-run/troupe/runtime"
)

// classify wraps a libcontainer error with context and the troupe error class
// it belongs to; errors it does not know stay unclassified (an internal
// failure of the runtime).
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf(format+": %w", append(args, err)...)
	switch {
	case errors.Is(err, libcontainer.ErrNotExist):
		return runtime.WithClass(runtime.ErrNotFound, wrapped)
	case errors.Is(err, libcontainer.ErrExist):
		return runtime.WithClass(runtime.ErrAlreadyExists, wrapped)
	case errors.Is(err, libcontainer.ErrInvalidID):
		return runtime.WithClass(runtime.ErrInvalidArgument, wrapped)
	case errors.Is(err, libcontainer.ErrPaused),
		errors.Is(err, libcontainer.ErrRunning),
		errors.Is(err, libcontainer.ErrNotRunning),
		errors.Is(err, libcontainer.ErrNotPaused):
		return runtime.WithClass(runtime.ErrFailedPrecondition, wrapped)
	}
	return wrapped
}
