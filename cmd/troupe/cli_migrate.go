package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
	"github.com/troupe-run/troupe/runtime/image"
)

// migration is what troupe migrate measured.
type migration struct {
	ID         string        `json:"id"`
	To         string        `json:"to"`
	Checkpoint string        `json:"checkpoint"`
	Pid        int           `json:"pid"`
	Dump       time.Duration `json:"dumpNs"`
	Transfer   time.Duration `json:"transferNs"`
	Restore    time.Duration `json:"restoreNs"`
	Downtime   time.Duration `json:"downtimeNs"`
	// Image is the digest of the image the container runs from, if it
	// does, and ImageBy how the target came to have it: "present",
	// "pulled" (by digest, from where the source pulled it) or "copied"
	// (exported here, imported there), in ImageTime, before the dump.
	Image     string        `json:"image,omitempty"`
	ImageBy   string        `json:"imageBy,omitempty"`
	ImageTime time.Duration `json:"imageNs,omitempty"`
}

func newMigrateCommand(o *globalOptions) *cobra.Command {
	var (
		to, name string
		tcp      bool
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "migrate ID --to ADDRESS",
		Short: "move a running container to another daemon",
		Long: `Move the running container ID to the daemon at --to: checkpoint it with
exit on this daemon, copy the checkpoint over as an archive, restore it there
under the same id, then remove it (and the checkpoint) here unless --keep. The
bundle must exist at the same path on the target. A container that runs from
an image needs that image (its digest) on the target: before the dump, a
target that lacks it pulls it by digest from where this daemon pulled it, or,
when it cannot, gets it copied from here as an OCI archive. Prints the
downtime: from the start of the dump to the container running again on the
target.`,
		GroupID: groupCheckpoints,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("--to is required")
			}
			src, err := o.client()
			if err != nil {
				return err
			}
			dst, err := (&globalOptions{address: to, tokenFile: o.tokenFile}).client()
			if err != nil {
				return err
			}
			if name == "" {
				name = fmt.Sprintf("migrate-%d", time.Now().Unix())
			}
			m, err := migrate(cmd.Context(), src, dst, args[0], name, tcp)
			if err != nil {
				return err
			}
			m.To = to
			if !keep {
				// The container is stopped here now; it lives on there.
				if err := src.Delete(cmd.Context(), m.ID, false); err != nil {
					return fmt.Errorf("migrated, but removing %s here: %w", m.ID, err)
				}
				if err := src.DeleteCheckpoint(cmd.Context(), m.ID, name); err != nil {
					return fmt.Errorf("migrated, but removing checkpoint %s here: %w", name, err)
				}
			}
			return o.output(cmd, m, func(w io.Writer) error {
				if m.Image != "" && m.ImageBy != "present" {
					if _, err := fmt.Fprintf(w, "image %s %s to %s in %v\n", m.Image, m.ImageBy, to, m.ImageTime.Round(time.Millisecond)); err != nil {
						return err
					}
				}
				_, err := fmt.Fprintf(w, "%s moved to %s (pid %d there): downtime %v (dump %v, transfer %v, restore %v)\n",
					m.ID, to, m.Pid, m.Downtime.Round(time.Millisecond), m.Dump.Round(time.Millisecond),
					m.Transfer.Round(time.Millisecond), m.Restore.Round(time.Millisecond))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the target daemon's `URL`")
	f.StringVar(&name, "name", "", "the checkpoint's name (default migrate-<unix time>)")
	f.BoolVar(&tcp, "tcp", false, "carry established TCP connections")
	f.BoolVar(&keep, "keep", false, "keep the stopped container and its checkpoint here")
	return cmd
}

// migrate does the moving and times each step.
func migrate(ctx context.Context, src, dst *client.Client, id, name string, tcp bool) (*migration, error) {
	m := &migration{ID: id, Checkpoint: name}
	c, err := src.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Image != "" {
		// Before the dump, while the container still runs here: the
		// image's bytes are no part of the downtime.
		t := time.Now()
		if m.ImageBy, err = bringImage(ctx, src, dst, c.Image); err != nil {
			return nil, fmt.Errorf("%s runs from image %s, which the target lacks: %w", id, c.Image, err)
		}
		m.Image, m.ImageTime = c.Image, time.Since(t)
	}
	t0 := time.Now()
	if _, err := src.Checkpoint(ctx, id, name, api.CheckpointRequest{Exit: true, TCP: tcp}); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	m.Dump = time.Since(t0)
	t1 := time.Now()
	archive, err := src.ExportCheckpoint(ctx, id, name)
	if err != nil {
		return nil, fmt.Errorf("export checkpoint %s/%s: %w", id, name, err)
	}
	_, err = dst.ImportCheckpoint(ctx, id, name, archive)
	archive.Close()
	if err != nil {
		return nil, fmt.Errorf("import checkpoint %s/%s on the target: %w", id, name, err)
	}
	m.Transfer = time.Since(t1)
	t2 := time.Now()
	// "missing": should the image have gone from the target since it was
	// brought there, the restore pulls it back by digest rather than fail.
	req := api.StartRequest{Checkpoint: name}
	if c.Image != "" {
		req.Pull = api.PullMissing
	}
	info, err := dst.Start(ctx, id, req)
	if err != nil {
		return nil, fmt.Errorf("restore %s on the target (its checkpoint %s is there and here): %w", id, name, err)
	}
	m.Restore = time.Since(t2)
	m.Downtime = time.Since(t0)
	if len(info.Processes) > 0 {
		m.Pid = info.Processes[0].Pid
	}
	return m, nil
}

// bringImage makes sure dst has the image digest that src has, and says
// how: "present", "pulled" or "copied". A pull is by digest, from each
// repository src knows the image by, so that the registry may serve the
// tag another image now and still nothing else comes; the daemons pull
// with their own credentials. When no registry gives it (none reachable
// from the target, a repository gone, an image never pushed), the image
// goes from src to dst as an OCI archive, streamed through this process.
func bringImage(ctx context.Context, src, dst *client.Client, digest string) (string, error) {
	if _, err := dst.Image(ctx, digest); err == nil {
		return "present", nil
	} else if !errors.Is(err, errclass.NotFound) {
		return "", fmt.Errorf("look for it on the target: %w", err)
	}
	img, err := src.Image(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("look for it here: %w", err)
	}
	// The archive names it by digest too: a copy moves no tag of the
	// target's, as a pull by digest does not.
	exportRef := digest
	var pullErrs []error
	for _, n := range img.Names {
		ref, err := image.DigestReference(n, digest)
		if err != nil {
			continue
		}
		if exportRef == digest {
			exportRef = ref
		}
		got, err := dst.PullImage(ctx, ref, nil)
		if err == nil && got.Digest == digest {
			return "pulled", nil
		}
		if err == nil {
			err = fmt.Errorf("the registry gave %s", got.Digest)
		}
		if ctx.Err() != nil {
			return "", err
		}
		pullErrs = append(pullErrs, fmt.Errorf("pull %s on the target: %w", ref, err))
	}
	if err := copyImage(ctx, src, dst, exportRef, digest); err != nil {
		return "", errors.Join(append(pullErrs, err)...)
	}
	return "copied", nil
}

// copyImage exports ref from src into an import on dst, without a file in
// between, and checks that dst now has digest.
func copyImage(ctx context.Context, src, dst *client.Client, ref, digest string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	archive, err := src.ExportImage(ctx, ref)
	if err != nil {
		return fmt.Errorf("export %s here: %w", ref, err)
	}
	defer archive.Close()
	imported, err := dst.ImportImages(ctx, archive)
	if err != nil {
		return fmt.Errorf("import %s on the target: %w", ref, err)
	}
	for _, img := range imported {
		if img.Digest == digest {
			return nil
		}
	}
	return fmt.Errorf("import %s on the target: it added no image %s", ref, digest)
}
