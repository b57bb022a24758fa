package linux

import (
	"fmt"
	"os"
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

// logPump copies a container's output pipe into its log file, driven by the
// reactor: it owns no goroutine and no buffer of its own.
type logPump struct {
	pipe int // the daemon's read end, non-blocking
	log  int
	done chan struct{}
}

// startLogPump copies everything written into r to the log at path,
// appending (to an emptied log when fresh), until every writer has gone. It
// owns r, also when it fails.
func startLogPump(rx *reactor, r *os.File, path string, fresh bool) (*logPump, error) {
	defer r.Close()
	// The pump keeps a bare duplicate of the read end: it shares r's open
	// file, so it stays non-blocking, and it needs no os.File (nor a slot on
	// Go's netpoller) per container.
	pipe, err := dupFile(r)
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_APPEND | unix.O_CLOEXEC
	if fresh {
		flags |= unix.O_TRUNC
	}
	log, err := unix.Open(path, flags, 0o640)
	if err != nil {
		unix.Close(pipe)
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	p := &logPump{pipe: pipe, log: log, done: make(chan struct{})}
	_, err = rx.add(pipe, unix.EPOLLIN, func(uint32) bool { return p.copy(rx.buf) }, p.release)
	if err != nil {
		p.release()
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	return p, nil
}

// copy moves what the pipe holds into the log; it reports false at EOF, when
// every writer has gone.
func (p *logPump) copy(buf []byte) bool {
	// A bounded number of reads per wake-up, so that one chatty container
	// cannot starve the others: a pipe left non-empty is reported again.
	for range 4 {
		n, err := unix.Read(p.pipe, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true
		case err != nil || n == 0:
			return false
		}
		// A log that cannot be written (a full disk) loses this output
		// rather than stop the copy: an unread pipe would block the
		// container's writes once full.
		_ = writeAll(p.log, buf[:n])
		if n < len(buf) {
			return true
		}
	}
	return true
}

// release closes both ends once the pump is out of the reactor.
func (p *logPump) release() {
	unix.Close(p.pipe)
	unix.Close(p.log)
	close(p.done)
}

// writeAll writes b to fd, going on after short writes and interruptions.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// dupFile duplicates f's descriptor without going through os.File.Fd, which
// would make the shared open file blocking.
func dupFile(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	err = raw.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	return fd, nil
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
