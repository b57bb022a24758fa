// Package console receives the terminal of a process started with
// runtime.ProcessSpec.ConsoleSocket: the runtime makes a pty inside the
// container and sends its master over a unix socket, as runc's
// --console-socket does. The master comes back pollable, so that reading
// it parks a goroutine on Go's netpoller rather than a thread.
package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
)

// MaxSize bounds a terminal's width and height: a window larger than this
// is a mistake, not a screen.
const MaxSize = 10000

// Socket makes the pair of connected unix sockets a console travels over:
// give child to the process (ProcessSpec.ConsoleSocket) and Receive on
// parent. Close both when done; child as soon as the process started.
func Socket() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	// Only the daemon's end waits on the netpoller; the runtime's end is
	// handed to the process as an ordinary blocking descriptor.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-socket"), os.NewFile(uintptr(fds[1]), "console-socket-child"), nil
}

// Receive waits (until ctx ends) for the pty master sent over parent and
// returns it, pollable.
func Receive(ctx context.Context, parent *os.File) (*os.File, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := parent.SetReadDeadline(dl); err != nil {
			return nil, fmt.Errorf("receive console: %w", err)
		}
	} else {
		_ = parent.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = parent.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := parent.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	buf := make([]byte, 4096) // the sender puts the pty's name here
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("receive console: %w", err)
	}
	if n == 0 && oobn == 0 {
		return nil, fmt.Errorf("receive console: the process closed its socket without sending one: %w", errclass.FailedPrecondition)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive console: %d control messages (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive console: %d descriptors (%v)", len(fds), err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive console: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// Resize sets the window size of the terminal whose master is m.
func Resize(m *os.File, width, height int) error {
	if width < 1 || height < 1 || width > MaxSize || height > MaxSize {
		return fmt.Errorf("terminal size %dx%d: want 1 to %d columns and rows: %w", width, height, MaxSize, errclass.InvalidArgument)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
	}); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	if ierr != nil {
		return fmt.Errorf("resize terminal: %w", ierr)
	}
	return nil
}
