package linux

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/troupe-run/troupe/errclass"
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
		return errclass.With(errclass.NotFound, wrapped)
	case errors.Is(err, libcontainer.ErrExist):
		return errclass.With(errclass.AlreadyExists, wrapped)
	case errors.Is(err, libcontainer.ErrInvalidID):
		return errclass.With(errclass.InvalidArgument, wrapped)
	case errors.Is(err, libcontainer.ErrPaused),
		errors.Is(err, libcontainer.ErrRunning),
		errors.Is(err, libcontainer.ErrNotRunning),
		errors.Is(err, libcontainer.ErrNotPaused):
		return errclass.With(errclass.FailedPrecondition, wrapped)
	}
	return wrapped
}

// classifyRun adds a class to a failed start, exec or update whose cause is
// the request itself, or the container's current state, rather than the
// runtime. What the container's init reports crosses a pipe as text
// (libcontainer's initError has nothing else), so the cause is told by the
// messages of libcontainer and the cgroup library; an error that matches
// none stays unclassified. args0 is the program the process runs, if any;
// memoryClass is the class of a memory limit the kernel refused because the
// container already uses more (a start asks for too little: invalid; an
// update comes too late: failed precondition).
func classifyRun(err error, args0 string, memoryClass error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case args0 != "" && strings.Contains(msg, fmt.Sprintf("exec: %q: ", args0)):
		// exec.LookPath in the init: no such program, not executable, a
		// directory. The message names the program.
		return errclass.With(errclass.InvalidArgument, err)
	case strings.Contains(msg, "chdir to cwd ("),
		strings.Contains(msg, "invalid environment variable"),
		strings.Contains(msg, "cannot setuid to unmapped uid"),
		strings.Contains(msg, "cannot setgid to unmapped gid"):
		return errclass.With(errclass.InvalidArgument, err)
	case strings.Contains(msg, "unable to set memory limit to"):
		return errclass.With(memoryClass, err)
	}
	return err
}
