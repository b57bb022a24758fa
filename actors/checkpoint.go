package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/image"
)

// checkpoint dumps the container with CRIU into a new checkpoint, as
// queued work, under a write lease from the store's owner
// (checkpoint_store.go).
func (a *containerActor) checkpoint(ctx actor.Context, msg *CheckpointContainer) {
	if a.deps.checkpoints == nil {
		ctx.Respond(&CheckpointContainerResult{Err: errNoCheckpoints})
		return
	}
	if err := a.deps.criuUnusable(); err != nil {
		ctx.Respond(&CheckpointContainerResult{Err: err})
		return
	}
	if pid := a.liveStdio(); pid != 0 {
		// CRIU would dump the process with its end of the daemon's pipes
		// or terminal, and no restore could give them back.
		ctx.Respond(&CheckpointContainerResult{Err: fmt.Errorf("checkpoint container %q: process %d has its stdin or terminal (or output) kept by the daemon, which a checkpoint cannot take along; let it end first: %w",
			a.rec.id, pid, errclass.FailedPrecondition)})
		return
	}
	self, root, c, replyTo, d := ctx.Self(), ctx.ActorSystem().Root, a.rec.ctr, ctx.Sender(), a.deps
	id, name, o, bundle, fromImage := a.rec.id, msg.Name, msg.Options, a.rec.bundlePath, a.rec.image
	a.enqueue(ctx, func() {
		ctx, cancel := d.opContext()
		defer cancel()
		cp := checkpoint.Checkpoint{Name: name, TCP: o.TCP, UnixSockets: o.UnixSockets, Shell: o.Shell,
			Exit: o.Exit, Container: id, BundlePath: bundle}
		lease, err := d.checkpoints.lease(ctx, id, name, useWrite)
		if err != nil {
			root.Send(self, &checkpointFinished{replyTo: replyTo, err: err})
			return
		}
		images, err := lease.reserve()
		if err == nil {
			err = c.Checkpoint(ctx, images, o)
			if err == nil && fromImage != "" {
				cp.Image = fromImage
				err = d.saveImageRoot(ctx, id, bundle, images, &cp)
			}
			if err != nil {
				lease.abandon()
			}
		}
		cp.Created = time.Now()
		if err == nil {
			if err = lease.commit(cp); err != nil {
				lease.abandon()
			}
		}
		// Released before the reply: whoever gets it may delete the
		// checkpoint at once.
		lease.release()
		root.Send(self, &checkpointFinished{replyTo: replyTo, checkpoint: cp, err: err})
	})
}

func (a *containerActor) checkpointFinished(ctx actor.Context, msg *checkpointFinished) {
	defer a.next()
	if msg.err != nil {
		ctx.Send(msg.replyTo, &CheckpointContainerResult{Err: msg.err})
		return
	}
	a.publish(api.Event{Type: api.EventCheckpoint})
	// With Exit the init is gone or going; its waiter reports the exit.
	ctx.Send(msg.replyTo, &CheckpointContainerResult{Checkpoint: msg.checkpoint})
}

// saveImageRoot puts beside a checkpoint's images what a restore of a
// container from an image needs that CRIU does not save: its spec, and what
// it changed of its image (its root's upper directory, as a layer). Taken
// after the dump: with Exit nothing runs any more; a container left running
// may have written since, which the restore then does not see.
func (d *deps) saveImageRoot(ctx context.Context, id, bundlePath, images string, cp *checkpoint.Checkpoint) error {
	if d.images == nil {
		return errNoImages
	}
	if img, err := d.images.Store.Get(cp.Image); err == nil {
		cp.ImageNames = img.Names
	}
	spec, err := os.ReadFile(filepath.Join(bundlePath, bundle.ConfigFile))
	if err != nil {
		return fmt.Errorf("checkpoint %s: its spec: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(images, checkpoint.SpecFile), spec, 0o600); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	f, err := os.OpenFile(filepath.Join(images, checkpoint.RootfsFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	err = d.images.Store.Diff(ctx, id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: its root: %w", id, err)
	}
	return nil
}

// restorePullPolicy refuses a pull policy the start m cannot have: one
// without a checkpoint (a start from an image carries its own), and
// "always" with one, since the checkpoint names its image by digest, which
// cannot have moved.
func restorePullPolicy(m *StartContainer) error {
	switch {
	case m.Pull == "":
		return nil
	case m.Checkpoint == "":
		return fmt.Errorf("start container %q: a pull policy is for a restore from a checkpoint: %w", m.ID, errclass.InvalidArgument)
	case m.Pull != api.PullNever && m.Pull != api.PullMissing:
		return fmt.Errorf("start container %q: pull policy %q for a restore: want %q or %q (the checkpoint names its image by digest): %w",
			m.ID, m.Pull, api.PullNever, api.PullMissing, errclass.InvalidArgument)
	}
	return nil
}

// checkpointImage is the image a checkpoint of a container that ran from
// one names, pulled first (by digest) with api.PullMissing when the store
// lacks it.
func (d *deps) checkpointImage(ctx context.Context, cp checkpoint.Checkpoint, pull api.PullPolicy) (image.Image, error) {
	if d.images == nil {
		return image.Image{}, errNoImages
	}
	img, err := d.images.Store.Get(cp.Image)
	switch {
	case errors.Is(err, errclass.NotFound) && pull == api.PullMissing:
		img, err = d.pullCheckpointImage(ctx, cp)
	case errors.Is(err, errclass.NotFound):
		err = fmt.Errorf("image %s%s is not in the store (\"pull\": \"missing\" would pull it by digest): %w",
			cp.Image, pulledAs(cp), errclass.NotFound)
	}
	return img, err
}

// mountCheckpointRoot makes the root of container id, restored from a
// checkpoint of a container that ran from img: the image, with what that
// container had changed of it, and a bundle of its spec on the new root.
// It returns the bundle's path.
func (d *deps) mountCheckpointRoot(ctx context.Context, id string, cp checkpoint.Checkpoint, images string, img image.Image) (string, error) {
	st := d.images.Store
	var spec specs.Spec
	data, err := os.ReadFile(filepath.Join(images, checkpoint.SpecFile))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil || spec.Root == nil {
		return "", fmt.Errorf("checkpoint %s: its spec: %v: %w", cp.Name, err, errclass.InvalidArgument)
	}
	diff, err := os.Open(filepath.Join(images, checkpoint.RootfsFile))
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: its root: %w", cp.Name, err)
	}
	defer diff.Close()
	root, err := st.MountWith(ctx, id, img, diff)
	if err != nil {
		return "", err
	}
	spec.Root.Path = root
	dir := st.BundleDir(id)
	if err := bundle.Write(dir, &spec); err != nil {
		if uerr := st.Unmount(id); uerr != nil {
			err = fmt.Errorf("%w; and its root stays: %v", err, uerr)
		}
		return "", err
	}
	return dir, nil
}

// pullCheckpointImage pulls the image of cp by its digest from the
// repositories it was pulled from, the first that has it: by digest, so
// that what comes is the very image the checkpoint's processes ran on,
// whatever its tags name now. Nothing found is NotFound, whatever each
// registry said (which the message tells): the restore lacks an image.
func (d *deps) pullCheckpointImage(ctx context.Context, cp checkpoint.Checkpoint) (image.Image, error) {
	var failures []string
	for _, n := range cp.ImageNames {
		ref, err := image.DigestReference(n, cp.Image)
		if err == nil {
			var img image.Image
			if img, err = d.images.Store.Pull(ctx, ref, nil); err == nil {
				return img, nil
			}
		}
		if ctx.Err() != nil {
			return image.Image{}, err
		}
		failures = append(failures, err.Error())
	}
	if len(failures) == 0 {
		return image.Image{}, fmt.Errorf("image %s is not in the store, and the checkpoint names no repository to pull it from: %w", cp.Image, errclass.NotFound)
	}
	return image.Image{}, fmt.Errorf("image %s%s is not in the store, and pulling it by digest failed: %s: %w",
		cp.Image, pulledAs(cp), strings.Join(failures, "; "), errclass.NotFound)
}

// pulledAs tells, in an error, what the checkpoint's image was pulled as.
func pulledAs(cp checkpoint.Checkpoint) string {
	if len(cp.ImageNames) == 0 {
		return ""
	}
	return " (pulled as " + strings.Join(cp.ImageNames, ", ") + ")"
}
