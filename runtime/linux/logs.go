package linux

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/containerlog"
)

// A container's init writes its stdout and its stderr into two pipes, not
// straight into its log, for checkpoint/restore: CRIU cannot dump a file the
// daemon opened outside the container's mount namespace, while a pipe it
// dumps and hands back on restore. The init itself holds the pipes' read
// ends, as fds logFD and logFD+1, so that its writes never fail while no
// daemon runs; a restarted daemon takes those read ends back with
// pidfd_getfd and goes on copying into the same log.
const logFD = 3

// logPump copies a container's output pipes into its log, driven by the
// reactor: it owns no goroutine and no buffer of its own. The log is bounded
// and rotates (package containerlog); output the log cannot take (a full
// disk) is dropped and counted, never left in the pipe, where it would stop
// the container once the pipe is full.
type logPump struct {
	log     *containerlog.Writer
	pipes   int // pipes still copied
	dropped *logDrops
	done    chan struct{}
}

// logDrops counts the output dropped by a runtime's log pumps and tells
// whoever wants to know.
type logDrops struct {
	bytes  atomic.Uint64
	notify func(path string, bytes int, err error) // may be nil
}

// startLogPump copies everything written into the pipes out (the init's
// stdout) and errp (its stderr; nil for a container that has one pipe for
// both) into the log at path, until every writer has gone; with fresh, the
// log starts empty. It owns out and errp, also when it fails.
func startLogPump(rx *reactor, out, errp *os.File, path string, limits containerlog.Limits, fresh bool, drops *logDrops) (*logPump, error) {
	defer out.Close()
	if errp != nil {
		defer errp.Close()
	}
	log, err := containerlog.Open(path, limits, fresh)
	if err != nil {
		return nil, err
	}
	p := &logPump{log: log, dropped: drops, done: make(chan struct{})}
	p.pipes = 1
	if errp != nil {
		p.pipes = 2
	}
	for _, f := range []struct {
		file   *os.File
		stream containerlog.Stream
	}{{out, containerlog.Stdout}, {errp, containerlog.Stderr}} {
		if f.file == nil {
			continue
		}
		if err := p.watch(rx, f.file, f.stream, path); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// watch has the reactor copy the pipe r as stream s.
func (p *logPump) watch(rx *reactor, r *os.File, s containerlog.Stream, path string) error {
	// The pump keeps a bare duplicate of the read end: it shares r's open
	// file, so it stays non-blocking, and it needs no os.File (nor a slot on
	// Go's netpoller) per container.
	pipe, err := dupFile(r)
	if err != nil {
		p.release(-1)
		return fmt.Errorf("log pipe: %w", err)
	}
	copyOut := func(uint32) bool { return p.copy(rx, pipe, s, path) }
	if _, err := rx.add(pipe, unix.EPOLLIN, copyOut, func() { p.release(pipe) }); err != nil {
		p.release(pipe)
		return fmt.Errorf("log pipe: %w", err)
	}
	return nil
}

// copy moves what the pipe holds into the log; it reports false at EOF, when
// every writer has gone.
func (p *logPump) copy(rx *reactor, pipe int, s containerlog.Stream, path string) bool {
	// A bounded number of reads per wake-up, so that one chatty container
	// cannot starve the others: a pipe left non-empty is reported again.
	for range 4 {
		n, err := unix.Read(pipe, rx.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true
		case err != nil || n == 0:
			return false
		}
		var werr error
		rx.scratch, werr = p.log.Write(rx.scratch, s, rx.buf[:n], time.Now())
		if werr != nil {
			p.dropped.bytes.Add(uint64(n))
			if p.dropped.notify != nil {
				p.dropped.notify(path, n, werr)
			}
		}
		if n < len(rx.buf) {
			return true
		}
	}
	return true
}

// release closes a pipe once it is out of the reactor (-1: none), and the
// log once no pipe is left.
func (p *logPump) release(pipe int) {
	if pipe >= 0 {
		unix.Close(pipe)
	}
	p.pipes--
	if p.pipes == 0 {
		p.log.Close()
		close(p.done)
	}
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

// outputPipes are a new container's stdout and stderr pipes: the daemon's
// read ends, the init's write ends, and the read ends again for the init to
// hold (fds logFD and logFD+1).
type outputPipes struct {
	read, write, init [2]*os.File
}

func newOutputPipes() (_ *outputPipes, err error) {
	p := &outputPipes{}
	defer func() {
		if err != nil {
			p.closeReads()
			p.closeInits()
		}
	}()
	for i := range 2 {
		if p.read[i], p.write[i], err = os.Pipe(); err != nil {
			return nil, err
		}
		if p.init[i], err = reopenReadEnd(p.read[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// closeReads closes the daemon's read ends (when no pump took them).
func (p *outputPipes) closeReads() {
	for _, f := range p.read {
		if f != nil {
			f.Close()
		}
	}
}

// closeInits closes what the init was given once it has its own copies.
func (p *outputPipes) closeInits() {
	for _, f := range append(p.write[:], p.init[:]...) {
		if f != nil {
			f.Close()
		}
	}
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

// takeLogPipes gets the read ends of a running init's output pipes from
// the init itself: its stdout's, and its stderr's (nil for an init started
// with one pipe for both, by an earlier troupe).
func takeLogPipes(pid int) (out, errp *os.File, err error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if out, err = takePipe(pidfd, pid, logFD); err != nil {
		return nil, nil, err
	}
	if errp, err = takePipe(pidfd, pid, logFD+1); err != nil {
		errp = nil
	}
	return out, errp, nil
}

// takePipe gets fd of process pid (pidfd) if it is the read end of a pipe.
func takePipe(pidfd, pid, fd int) (*os.File, error) {
	got, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("take the log pipe of pid %d: %w", pid, err)
	}
	var st unix.Stat_t
	flags, ferr := unix.FcntlInt(uintptr(got), unix.F_GETFL, 0)
	if err := unix.Fstat(got, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || ferr != nil || flags&unix.O_ACCMODE != unix.O_RDONLY {
		unix.Close(got)
		return nil, fmt.Errorf("fd %d of pid %d is not the read end of its log pipe", fd, pid)
	}
	if err := unix.SetNonblock(got, true); err != nil {
		unix.Close(got)
		return nil, err
	}
	return os.NewFile(uintptr(got), "log-pipe"), nil
}
