package fake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// imageFile is what a fake checkpoint writes into its images directory;
// Start with Restore requires it, as CRIU requires its images.
const imageFile = "fake-image"

// Checkpoint implements runtime.Container: it records the container's id in
// dir and, with Exit, ends the container as CRIU's dump does (SIGKILL).
func (c *Container) Checkpoint(ctx context.Context, dir string, o runtime.CheckpointOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.statusLocked(); s != runtime.Running && s != runtime.Paused {
		return fmt.Errorf("checkpoint container %q: container is %s: %w", c.id, s, errclass.FailedPrecondition)
	}
	if err := os.WriteFile(filepath.Join(dir, imageFile), []byte(c.id), 0o600); err != nil {
		return fmt.Errorf("checkpoint container %q: %w", c.id, err)
	}
	if o.Exit {
		c.frozen = false
		c.endLocked(c.init, killedBy(syscall.SIGKILL))
	}
	return nil
}

// checkImages stands in for CRIU reading a checkpoint's images.
func checkImages(o *runtime.RestoreOptions) error {
	if _, err := os.Stat(filepath.Join(o.ImagesDir, imageFile)); err != nil {
		return fmt.Errorf("restore: no checkpoint images in %s: %w", o.ImagesDir, err)
	}
	return nil
}
