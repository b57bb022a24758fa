package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
)

// exitError ends the command with the exit code of the process it ran,
// and prints nothing: the process said what it had to.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitWith makes a command end as the process did.
func exitWith(cmd *cobra.Command, e api.ProcessExit) error {
	if e.ExitCode == 0 {
		return nil
	}
	cmd.SilenceErrors = true
	code := e.ExitCode
	if code < 0 || code > 255 {
		code = 255 // unknown: a process an earlier daemon started
	}
	return &exitError{code: code}
}

// attachOptions say how a command attaches to a process.
type attachOptions struct {
	stdin bool // forward this command's stdin
	tty   bool // the process has a terminal: ours goes raw meanwhile
}

// attach connects this command's stdio to process pid of container id
// until the process exits, and returns how it did.
func attach(ctx context.Context, cmd *cobra.Command, c *client.Client, id string, pid int, o attachOptions) (api.ProcessExit, error) {
	s, err := c.Attach(ctx, id, pid)
	if err != nil {
		return api.ProcessExit{}, err
	}
	return attachStream(ctx, cmd, c, id, pid, s, o)
}

// attachStream is attach on a stream already open.
func attachStream(ctx context.Context, cmd *cobra.Command, c *client.Client, id string, pid int, s *client.Stream, o attachOptions) (api.ProcessExit, error) {
	defer s.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in, stdout, stderr := cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f, ok := in.(*os.File); ok && o.tty && isTerminal(f) {
		restore, err := rawTerminal(f)
		if err != nil {
			return api.ProcessExit{}, err
		}
		defer restore()
		go followSize(ctx, f, s)
	}
	if o.stdin {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := in.Read(buf)
				if n > 0 && s.Stdin(ctx, buf[:n]) != nil {
					return
				}
				if err != nil {
					if !o.tty {
						_ = s.CloseStdin(ctx)
					}
					return
				}
			}
		}()
	}
	for {
		f, err := s.Recv(ctx)
		if errors.Is(err, client.ErrDetached) {
			// Closed before an exit: the process ran on; wait for it.
			return c.Wait(ctx, id, pid)
		}
		if err != nil {
			return api.ProcessExit{}, err
		}
		switch {
		case f.Control == nil && f.Stream == api.StreamStderr:
			_, err = stderr.Write(f.Data)
		case f.Control == nil:
			_, err = stdout.Write(f.Data)
		case f.Control.Type == api.ControlExit && f.Control.Exit != nil:
			return *f.Control.Exit, nil
		case f.Control.Type == api.ControlDropped:
			_, err = fmt.Fprintf(stderr, "troupe: %d bytes of the process's output were dropped before this client attached\r\n", f.Control.Dropped)
		case f.Control.Type == api.ControlError:
			_, err = fmt.Fprintf(stderr, "troupe: the daemon refused: %s\r\n", f.Control.Error)
		}
		if err != nil {
			return api.ProcessExit{}, err
		}
	}
}

// terminalSize is the size of the terminal f, or 0, 0.
func terminalSize(f *os.File) (width, height int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

// followSize tells the process's terminal of every change of ours.
func followSize(ctx context.Context, f *os.File, s *client.Stream) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-winch:
			if w, h := terminalSize(f); w > 0 && h > 0 {
				_ = s.Resize(ctx, w, h)
			}
		}
	}
}

// rawTerminal puts the terminal f in raw mode, as cfmakeraw(3) does: what
// is typed, Ctrl-C included, goes to the process as it is. restore puts it
// back.
func rawTerminal(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

func newAttachCommand(o *globalOptions) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach ID [PID]",
		Short: "show what a container's process writes, until it exits",
		Long: `Attach to a process of the running container ID: its init by default (what
it writes from now on, from its log, stdout here on stdout and stderr on
stderr), or the process PID that troupe exec started attached (what it
wrote meanwhile first, kept up to 256 KiB by the daemon). The command ends
with the process's exit code; Ctrl-C detaches and leaves it running.

A process with a kept stdin gets this command's stdin (--no-stdin: not);
one with a terminal gets this terminal, in raw mode meanwhile. Only one
client attaches to a process at a time.`,
		Example: `  troupe attach web
  troupe exec -d web -- sh -c 'sleep 5; echo done'   # detached: not attachable
  troupe attach web 4242`,
		GroupID: groupProcesses,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			info, err := c.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if len(info.Processes) == 0 {
				return fmt.Errorf("container %q is %s: nothing to attach to", args[0], info.State.Status)
			}
			proc := info.Processes[0]
			if len(args) == 2 {
				pid, err := strconv.Atoi(args[1])
				if err != nil || pid < 1 {
					return fmt.Errorf("pid %q: want a positive number", args[1])
				}
				found := false
				for _, p := range info.Processes {
					if p.Pid == pid {
						proc, found = p, true
					}
				}
				if !found {
					return fmt.Errorf("container %q has no process %d", args[0], pid)
				}
			}
			exit, err := attach(ctx, cmd, c, args[0], proc.Pid, attachOptions{stdin: proc.Stdio && !noStdin, tty: proc.Terminal})
			if err != nil {
				if ctx.Err() != nil {
					return nil // Ctrl-C: detached
				}
				return err
			}
			return exitWith(cmd, exit)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not send this command's stdin to the process")
	return cmd
}

// printLogs writes what container id's init wrote, each line on its
// stream: for a container that ended before it could be attached to.
func printLogs(ctx context.Context, cmd *cobra.Command, c *client.Client, id string) error {
	rc, err := c.Logs(ctx, id, client.LogOptions{Streams: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		w := cmd.OutOrStdout()
		if rest, ok := strings.CutPrefix(line, "stderr "); ok {
			line, w = rest, cmd.ErrOrStderr()
		} else {
			line = strings.TrimPrefix(line, "stdout ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return sc.Err()
}
