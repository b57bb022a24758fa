package linux

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/troupe-run/troupe/runtime"
)

// Checkpoint implements runtime.Container.
func (c *container) Checkpoint(ctx context.Context, dir string, o runtime.CheckpointOptions) error {
	status, err := c.Status()
	if err != nil {
		return err
	}
	if status != runtime.Running && status != runtime.Paused {
		return fmt.Errorf("checkpoint container %q: container is %s: %w", c.ID(), status, runtime.ErrFailedPrecondition)
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
	if err := c.lc.Checkpoint(opts); err != nil {
		return criuError(classify(err, "checkpoint container %q", c.ID()), filepath.Join(dir, "dump.log"))
	}
	return nil
}

// criuError adds the lines of CRIU's log that say what failed: libcontainer
// reports only "criu failed: type DUMP errno 0".
func criuError(err error, logPath string) error {
	data, rerr := os.ReadFile(logPath)
	if rerr != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		// Every run logs an RLIMIT_NOFILE error that changes nothing.
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if len(lines) == 0 {
		return err
	}
	return fmt.Errorf("%w; CRIU says: %s", err, strings.Join(lines, " | "))
}
