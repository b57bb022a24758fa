package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
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
bundle must exist at the same path on the target. Prints the downtime: from
the start of the dump to the container running again on the target.`,
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
	info, err := dst.Start(ctx, id, api.StartRequest{Checkpoint: name})
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
