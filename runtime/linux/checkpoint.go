package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/criu"
)

// DefaultCriuTimeout is the default deadline of one dump or restore of a
// container using up to 1 GiB of memory; each further GiB adds as much
// again (criu.Timeout). A working CRIU dumps a small container in a fraction
// of a second and writes a GiB in a few seconds.
const DefaultCriuTimeout = 30 * time.Second

// Checkpoint implements runtime.Container. CRIU gets a deadline that grows
// with the container's memory; on it CRIU is killed and the container left
// as it was: its tasks are released (the kernel detaches a dead tracer) and
// a freezer that CRIU froze is thawed.
func (c *container) Checkpoint(ctx context.Context, dir string, o runtime.CheckpointOptions) error {
	status, err := c.Status()
	if err != nil {
		return err
	}
	if status != runtime.Running && status != runtime.Paused {
		return fmt.Errorf("checkpoint container %q: container is %s: %w", c.ID(), status, errclass.FailedPrecondition)
	}
	if len(c.meta.Join) > 0 {
		// CRIU would record the namespaces as external ones, and a restore
		// (which joins nothing) would have none to give it.
		j := c.meta.Join[0]
		return fmt.Errorf("checkpoint container %q: it joined the %s namespace %s, which a restore could not join again: %w",
			c.ID(), j.Namespace, j.Where(), errclass.FailedPrecondition)
	}
	opts := &libcontainer.CriuOpts{
		ImagesDirectory:         dir,
		LeaveRunning:            !o.Exit,
		TcpEstablished:          o.TCP,
		ExternalUnixConnections: o.UnixSockets,
		ShellJob:                o.Shell,
		FileLocks:               true,
		ManageCgroupsMode:       "soft",
	}
	ctx, cancel := context.WithTimeout(ctx, criu.Timeout(c.criuTimeout, c.memoryUsage()))
	defer cancel()
	err = criu.Bound(ctx, func() error { return c.lc.Checkpoint(opts) })
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil:
		return criuError(classify(err, "checkpoint container %q", c.ID()), filepath.Join(dir, "dump.log"))
	case errors.Is(err, criu.ErrStuck):
		// libcontainer still holds the container: touching it would block.
		return fmt.Errorf("checkpoint container %q: %w", c.ID(), err)
	}
	err = fmt.Errorf("checkpoint container %q: %w%s", c.ID(), err, logTail(filepath.Join(dir, "dump.log")))
	if uerr := criu.Unmount(dir); uerr != nil {
		err = fmt.Errorf("%w; and what CRIU mounted stays: %v", err, uerr)
	}
	if status == runtime.Running {
		if s, serr := c.lc.Status(); serr == nil && s == libcontainer.Paused {
			if rerr := c.lc.Resume(); rerr != nil {
				return fmt.Errorf("%w; and it stays frozen: %v", err, rerr)
			}
		}
	}
	return err
}

// memoryUsage is what the container's memory cgroup says it uses, or 0.
func (c *container) memoryUsage() uint64 {
	s, err := c.lc.Stats()
	if err != nil || s.CgroupStats == nil {
		return 0
	}
	return s.CgroupStats.MemoryStats.Usage.Usage
}

// imagesSize is the size of a checkpoint's images, which a restore reads.
func imagesSize(dir string) uint64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += uint64(info.Size())
		}
	}
	return n
}

// criuError adds the lines of CRIU's log that say what failed: libcontainer
// reports only "criu failed: type DUMP errno 0".
func criuError(err error, logPath string) error {
	if why := criu.LogErrors(logPath); why != "" {
		return fmt.Errorf("%w; CRIU says: %s", err, why)
	}
	return err
}

// logTail is the last line of CRIU's log, which says where a killed CRIU
// was, as "; CRIU's log ends: ...", or "".
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return ""
	}
	return "; CRIU's log ends: " + last
}
