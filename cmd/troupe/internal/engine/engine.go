package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"syscall"

	"github.com/opencontainers/runc/libcontainer/exeseal"

	"github.com/troupe-run/troupe/errclass"
)

// Name is the engine's argv[0], and the name of its memfd.
const Name = "troupe-engine"

// Embedded says whether this binary embeds the engine.
func Embedded() bool { return len(binary) > 0 }

// Engine is the engine's executable in a sealed memfd, written once and
// executed as often as needed.
type Engine struct {
	file *os.File
	// path is the memfd as this process's /proc/PID/fd/N. Not
	// /proc/self/fd/N: that is resolved in the child after Go has moved
	// the child's ExtraFiles into place, which may have overwritten fd N.
	path string
}

// Open writes the embedded engine into a sealed memfd. Call it once per
// daemon start.
func Open() (*Engine, error) {
	if !Embedded() {
		return nil, fmt.Errorf("this troupe embeds no engine (build it with make build): %w", errclass.FailedPrecondition)
	}
	return open(binary)
}

// open writes exe into a sealed memfd.
func open(exe []byte) (*Engine, error) {
	// libcontainer's own: memfd_create with MFD_CLOEXEC|MFD_ALLOW_SEALING,
	// and MFD_EXEC tried first (needed from Linux 6.3 when
	// vm.memfd_noexec=1; older kernels answer EINVAL, and it is retried
	// without). The seal function chmods it 0511 and adds F_SEAL_EXEC
	// (where the kernel has it) and the four seals exeseal.IsCloned checks.
	f, seal, err := exeseal.Memfd(Name)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if _, err := f.Write(exe); err != nil {
		f.Close()
		return nil, fmt.Errorf("engine: write memfd: %w", err)
	}
	if err := seal(&f); err != nil {
		f.Close()
		return nil, fmt.Errorf("engine: seal memfd: %w", err)
	}
	if !exeseal.IsCloned(f) {
		f.Close()
		return nil, fmt.Errorf("engine: the memfd's seals are not what libcontainer checks for: %w", errclass.FailedPrecondition)
	}
	return &Engine{file: f, path: "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))}, nil
}

// Close closes the memfd; engines started from it run on.
func (e *Engine) Close() error { return e.file.Close() }

// Command returns the command that runs the engine with args, killed when
// ctx ends and, once started with [Start], when this process dies. Set its
// stdio, environment and ExtraFiles (fd 3 on) as for any command; leave
// its SysProcAttr's Pdeathsig.
func (e *Engine) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.path, args...)
	cmd.Args[0] = Name
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Start starts cmd and returns a channel that receives cmd.Wait's result.
//
// Why not cmd.Start: the kernel sends the parent-death signal when the
// thread that forked the child ends, not the process, and Go ends a
// thread whenever a goroutine locked to it exits (libcontainer's
// mount-source goroutine does, at every start). So the fork happens on a
// goroutine locked to its thread that stays there, in cmd.Wait, for as
// long as the engine runs: one thread per running engine.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err != nil {
			return
		}
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	return done, nil
}
