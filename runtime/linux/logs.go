package linux

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A container's init writes its stdout and stderr into a pipe, not straight
// into its log file, for checkpoint/restore: CRIU cannot dump a file the
// daemon opened outside the container's mount namespace, while a pipe it
// dumps and hands back on restore. The init itself holds the pipe's read end
// as fd logFD, so that its writes never fail while no daemon runs; a
// restarted daemon takes that read end back with pidfd_getfd and goes on
// copying into the same log.
const logFD = 3

// logPump copies a container's output pipe into its log file.
type logPump struct {
	done chan struct{}
}

// startLogPump copies everything written into r to the log at path,
// appending (to an emptied log when fresh), until every writer has gone. It
// owns r, also when it fails.
func startLogPump(r *os.File, path string, fresh bool) (*logPump, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND | syscall.O_CLOEXEC
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o640)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	p := &logPump{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer r.Close()
		defer f.Close()
		_, _ = io.Copy(f, r)
	}()
	return p, nil
}

// reopenReadEnd opens the pipe of r again, for reading, as a file of its
// own. Handing a child a file makes its descriptor blocking (os.File.Fd),
// and that flag belongs to the open file, shared by its duplicates: given r
// itself, the pump's reads would each hold an OS thread, one per container.
func reopenReadEnd(r *os.File) (*os.File, error) {
	raw, err := r.SyscallConn()
	if err != nil {
		return nil, err
	}
	var f *os.File
	var openErr error
	err = raw.Control(func(fd uintptr) {
		f, openErr = os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY, 0)
	})
	if err != nil {
		return nil, err
	}
	if openErr != nil {
		return nil, fmt.Errorf("reopen the log pipe: %w", openErr)
	}
	return f, nil
}

// drainTimeout bounds how long an init's exit waits for its output to reach
// the log: a process that escaped the container's pid namespace could keep
// the pipe open for ever.
const drainTimeout = 2 * time.Second

// drained waits until the pump has copied everything (or drainTimeout).
func (p *logPump) drained() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(drainTimeout):
	}
}

// takeLogPipe gets the read end of a running init's output pipe from the
// init itself.
func takeLogPipe(pid int) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, logFD, 0)
	if err != nil {
		return nil, fmt.Errorf("take the log pipe of pid %d: %w", pid, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return nil, fmt.Errorf("fd %d of pid %d is not its log pipe", logFD, pid)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "log-pipe"), nil
}
