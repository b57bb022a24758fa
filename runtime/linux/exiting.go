package linux

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/procstat"
)

// groupExited reports whether every thread of process pid has exited (or
// it has been reaped), which its pidfd tells: unlike /proc's state, which
// is its main thread's, it turns readable only then.
func groupExited(pid int) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll the pidfd of %d: %w", pid, err)
		}
		return n > 0, nil
	}
}

// allExiting reports whether every thread of process pid has begun to exit,
// as they all do at its exit, and none does when only its main thread is
// gone (pthread_exit, or an execve from another thread taking its place).
// It is false when pid's threads cannot be read.
func allExiting(pid int) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			return false
		}
		st, err := procstat.ReadTask(pid, tid)
		if err != nil {
			// Gone between the listing and now: it had exited.
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return false
		}
		if !st.Exiting() {
			return false
		}
	}
	return true
}
