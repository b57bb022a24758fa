package kubeletapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	vkapi "github.com/virtual-kubelet/virtual-kubelet/node/api"
	utilexec "k8s.io/utils/exec"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
)

// firstSizeWait is how long Exec waits, for a terminal, for the client's
// first size before it starts the process: kubectl sends it as soon as
// its streams are up, and a shell that starts at the right size draws its
// prompt right. Without one by then, the process starts at the daemon's
// default size and the size follows when it comes.
const firstSizeWait = 500 * time.Millisecond

// Streams serves logs, exec and attach of troupe containers, named by
// their troupe ids, for virtual-kubelet's node/api handlers.
type Streams struct {
	Client *client.Client
}

// Logs returns what the init of container id wrote, as the plain lines
// kubectl logs prints (with an RFC 3339 time first when opts.Timestamps).
// opts.Tail 0 reads all: virtual-kubelet makes tailLines=0 and no tailLines
// the same. Previous is refused: troupe keeps one container per id, and a
// restarted container is a new one whose predecessor's log is gone.
func (s *Streams) Logs(ctx context.Context, id string, opts vkapi.ContainerLogOpts) (io.ReadCloser, error) {
	if opts.Previous {
		return nil, errdefs.InvalidInputf("previous terminated container of %q not found: troupe keeps no previous container", id)
	}
	lo := client.LogOptions{Follow: opts.Follow, Timestamps: opts.Timestamps}
	if opts.Tail > 0 {
		lo.Tail = opts.Tail
	}
	switch {
	case opts.SinceSeconds > 0:
		lo.Since = strconv.Itoa(opts.SinceSeconds) + "s"
	case !opts.SinceTime.IsZero():
		lo.Since = opts.SinceTime.UTC().Format(time.RFC3339Nano)
	}
	rc, err := s.Client.Logs(ctx, id, lo)
	if err != nil {
		return nil, classify(fmt.Errorf("logs of container %q: %w", id, err))
	}
	if opts.LimitBytes > 0 {
		return limitedReadCloser{io.LimitReader(rc, int64(opts.LimitBytes)), rc}, nil
	}
	return rc, nil
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

// Exec runs cmd in container id as its init's user, in its init's working
// directory and environment, as a kubelet's runtime does, with the stdio
// attach asks for. It returns once the process has exited: nil for exit
// code 0, a k8s.io/utils/exec.CodeExitError with its code otherwise, which
// virtual-kubelet's exec handler turns into the status kubectl exits with.
func (s *Streams) Exec(ctx context.Context, id string, cmd []string, attach vkapi.AttachIO) error {
	if len(cmd) == 0 {
		return errdefs.InvalidInput("exec: no command")
	}
	c, err := s.Client.Get(ctx, id)
	if err != nil {
		return classify(fmt.Errorf("exec in container %q: %w", id, err))
	}
	if len(c.Processes) == 0 || c.State.Status != api.Running {
		return errdefs.InvalidInputf("exec in container %q: it is %s, not running", id, c.State.Status)
	}
	init := c.Processes[0]
	req := api.ExecRequest{
		Args:     cmd,
		Cwd:      init.Cwd,
		User:     &init.User,
		Attach:   true,
		Stdin:    attach.Stdin() != nil,
		Terminal: attach.TTY(),
	}
	if attach.TTY() {
		req.ConsoleSize = firstSize(ctx, attach.Resize())
	}
	proc, err := s.Client.Exec(ctx, id, req)
	if err != nil {
		return classify(fmt.Errorf("exec in container %q: %w", id, err))
	}
	stream, err := s.Client.Attach(ctx, id, proc.Pid)
	if err != nil {
		return classify(fmt.Errorf("attach to process %d of container %q: %w", proc.Pid, id, err))
	}
	defer stream.Close()
	exit, err := pump(ctx, stream, attach, req.Stdin)
	if err != nil {
		return fmt.Errorf("exec in container %q: %w", id, err)
	}
	if exit.ExitCode != 0 {
		// Returned as it is: the handler asserts the type, unwrapping
		// nothing.
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q in container %q exited with %s", cmd, id, describe(exit)), Code: exit.ExitCode}
	}
	return nil
}

// Attach connects attach to the stdio of container id's init: what it
// writes from now on, until it exits, and its stdin when the container
// keeps one (started with Stdin or Terminal). Its exit code is not an error
// of the attach, as with a kubelet.
func (s *Streams) Attach(ctx context.Context, id string, attach vkapi.AttachIO) error {
	c, err := s.Client.Get(ctx, id)
	if err != nil {
		return classify(fmt.Errorf("attach to container %q: %w", id, err))
	}
	if len(c.Processes) == 0 || c.State.Status == api.Stopped {
		return errdefs.InvalidInputf("attach to container %q: it is %s", id, c.State.Status)
	}
	init := c.Processes[0]
	stream, err := s.Client.AttachInit(ctx, id, init.Pid, false)
	if err != nil {
		return classify(fmt.Errorf("attach to container %q: %w", id, err))
	}
	defer stream.Close()
	if _, err := pump(ctx, stream, attach, init.Stdio && attach.Stdin() != nil); err != nil {
		return fmt.Errorf("attach to container %q: %w", id, err)
	}
	return nil
}

// pump copies between stream and attach until the process exits (its exit
// is returned), ctx ends or the stream fails. Stdin, when forwarded, is
// closed for the process at its end, as a terminal's end of file.
func pump(ctx context.Context, stream *client.Stream, attach vkapi.AttachIO, stdin bool) (api.ProcessExit, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdin {
		go func() {
			// Blocked in Read when the process exits, this goroutine ends
			// when the handler closes the client's connection; its writes
			// then fail on the closed stream.
			buf := make([]byte, 32<<10)
			in := attach.Stdin()
			for {
				n, err := in.Read(buf)
				if n > 0 {
					if stream.Stdin(ctx, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					_ = stream.CloseStdin(ctx)
					return
				}
			}
		}()
	}
	if resize := attach.Resize(); resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if stream.Resize(ctx, int(sz.Width), int(sz.Height)) != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var exit *api.ProcessExit
	for {
		f, err := stream.Recv(ctx)
		if errors.Is(err, client.ErrDetached) {
			if exit == nil {
				return api.ProcessExit{}, err
			}
			return *exit, nil
		}
		if err != nil {
			return api.ProcessExit{}, err
		}
		switch f.Stream {
		case api.StreamStdout:
			if err := write(attach.Stdout(), f.Data); err != nil {
				return api.ProcessExit{}, err
			}
		case api.StreamStderr:
			// A client that asked for no stderr gets none.
			if err := write(attach.Stderr(), f.Data); err != nil {
				return api.ProcessExit{}, err
			}
		case api.StreamControl:
			if f.Control.Type == api.ControlExit && f.Control.Exit != nil {
				e := *f.Control.Exit
				exit = &e
			}
		}
	}
}

// write writes p to w, a stream the client may not have asked for (nil).
func write(w io.Writer, p []byte) error {
	if w == nil {
		return nil
	}
	_, err := w.Write(p)
	return err
}

// firstSize waits a moment for a terminal's first size.
func firstSize(ctx context.Context, resize <-chan vkapi.TermSize) *api.ConsoleSize {
	if resize == nil {
		return nil
	}
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case sz, ok := <-resize:
		if ok && sz.Width > 0 && sz.Height > 0 {
			return &api.ConsoleSize{Width: int(sz.Width), Height: int(sz.Height)}
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

func describe(e api.ProcessExit) string {
	if e.Signal != "" {
		return fmt.Sprintf("code %d (%s)", e.ExitCode, e.Signal)
	}
	return fmt.Sprintf("code %d", e.ExitCode)
}

// classify gives err virtual-kubelet's class for troupe's: unknown
// containers are NotFound (404), refused arguments InvalidInput (400).
func classify(err error) error {
	switch {
	case errors.Is(err, errclass.NotFound):
		return errdefs.AsNotFound(err)
	case errors.Is(err, errclass.InvalidArgument):
		return errdefs.AsInvalidInput(err)
	}
	return err
}
