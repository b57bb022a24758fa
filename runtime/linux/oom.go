package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// notifyOOMv1 is libcontainer's OOM notification for cgroup v1 on the
// reactor: libcontainer's own keeps a goroutine in a blocking read of its
// eventfd, an OS thread per container. The channel receives a value per
// OOM event (events that come faster than they are received are merged, as
// the eventfd's counter merges them anyway) and is closed when the cgroup
// goes away.
func notifyOOMv1(rx *reactor, dir string) (<-chan struct{}, error) {
	if dir == "" {
		return nil, errors.New("memory controller missing")
	}
	oomControl, err := unix.Open(filepath.Join(dir, "memory.oom_control"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open memory.oom_control: %w", err)
	}
	// The kernel only needs the control file while the event is registered.
	defer unix.Close(oomControl)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	eventControl := filepath.Join(dir, "cgroup.event_control")
	if err := os.WriteFile(eventControl, fmt.Appendf(nil, "%d %d", efd, oomControl), 0o700); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("register for OOM events: %w", err)
	}
	ch := make(chan struct{}, 1)
	ready := func(uint32) bool {
		var count [8]byte
		_, err := unix.Read(efd, count[:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return true
		case err != nil:
			return false
		}
		// The kernel signals the eventfd as well when the cgroup is
		// removed: that is the end, not an OOM kill.
		if _, err := os.Lstat(eventControl); errors.Is(err, os.ErrNotExist) {
			return false
		}
		select {
		case ch <- struct{}{}:
		default: // one is pending already
		}
		return true
	}
	release := func() {
		unix.Close(efd)
		close(ch)
	}
	if _, err := rx.add(efd, unix.EPOLLIN, ready, release); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("watch OOM events: %w", err)
	}
	return ch, nil
}
