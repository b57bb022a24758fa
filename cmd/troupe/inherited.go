package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec. A
// daemon may be started with descriptors it knows nothing of (a lock that
// flock(1) holds, a shell's redirections); without this, every process it
// starts would inherit them: the engine, CRIU (which then refuses to dump a
// process holding a file lock), the CRIU self-test. Containers' inits are
// safe anyway (libcontainer closes what it did not pass), but nothing else
// is. Go opens its own descriptors close-on-exec, so marking them too is
// harmless.
func closeInheritedOnExec() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("inherited descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("inherited descriptor %d: %w", fd, err)
		}
	}
	return nil
}
