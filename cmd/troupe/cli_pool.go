package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/api"
)

func newPoolCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "keep containers of a bundle or an image prepared ahead (warm pools)",
		Long: `A warm pool keeps SIZE containers of one bundle prepared ahead: namespaces,
mounts and cgroups made, the init waiting just before it execs the bundle's
process. A start of that bundle then claims one (its answer says "warm") and
the pool refills in the background; with none ready a start is cold as
usual. Pools do not outlive the daemon.

A pool of an image (--image, with troupe run's flags) does the same for
starts from that image, by digest, with the same overrides: troupe run with
the pool's image and flags claims from it. A claimed container's host is
named after its id, as a cold one's, but its environment has no HOSTNAME
(it was made before the id was known) unless --hostname names one.`,
		GroupID: groupContainers,
	}
	cmd.AddCommand(newPoolSetCommand(o), newPoolListCommand(o), newPoolRemoveCommand(o))
	return cmd
}

func newPoolSetCommand(o *globalOptions) *cobra.Command {
	var size int
	var ref string
	r := &runOptions{}
	cmd := &cobra.Command{
		Use:   "set NAME [BUNDLE] --size N  |  set NAME --size N --image IMAGE [flags] [-- ARG...]",
		Short: "create a pool for BUNDLE or IMAGE, or resize pool NAME",
		Example: `  troupe pool set web /srv/bundles/web --size 20
  troupe pool set job --size 10 --image 127.0.0.1:5000/busybox:1 --memory 64m -- sleep 300
  troupe run --memory 64m 127.0.0.1:5000/busybox:1 sleep 300   # claims one of job's
  troupe pool set web --size 0`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("size") {
				return fmt.Errorf("pool set: --size is required")
			}
			if ref != "" {
				req, err := r.request(cmd, ref, args[1:])
				if err != nil {
					return err
				}
				c, err := o.client()
				if err != nil {
					return err
				}
				p, err := c.SetImagePool(cmd.Context(), args[0], req.ImageStart, size)
				if err != nil {
					return err
				}
				return o.output(cmd, p, func(w io.Writer) error { return writePools(w, []api.Pool{p}) })
			}
			if len(args) > 2 {
				return fmt.Errorf("pool set: a pool of a bundle takes NAME and BUNDLE; a command line needs --image")
			}
			var bundle string
			if len(args) == 2 {
				abs, err := filepath.Abs(args[1])
				if err != nil {
					return err
				}
				bundle = abs
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			p, err := c.SetPool(cmd.Context(), args[0], bundle, size)
			if err != nil {
				return err
			}
			return o.output(cmd, p, func(w io.Writer) error { return writePools(w, []api.Pool{p}) })
		},
	}
	cmd.Flags().IntVar(&size, "size", 0, "how many prepared containers to keep ready")
	cmd.Flags().StringVar(&ref, "image", "", "a pool of the image `IMAGE` (a name or digest) rather than of a bundle")
	r.flags(cmd.Flags())
	return cmd
}

func newPoolListCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list the warm pools",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ps, err := c.Pools(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []api.Pool{}
			}
			return o.output(cmd, ps, func(w io.Writer) error { return writePools(w, ps) })
		},
	}
}

func newPoolRemoveCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove", "delete"},
		Short:   "remove a pool and its prepared containers",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeletePool(cmd.Context(), args[0]); err != nil {
				return err
			}
			if o.json {
				return nil
			}
			return printLine(cmd.OutOrStdout(), args[0])
		},
	}
}

func writePools(w io.Writer, ps []api.Pool) error {
	rows := [][]string{{"NAME", "SIZE", "READY", "FILLING", "OF", "ERROR"}}
	for _, p := range ps {
		of := p.BundlePath
		if p.Image != "" {
			of = p.Image + " (" + shortDigest(p.Digest) + ")"
		}
		rows = append(rows, []string{p.Name, strconv.Itoa(p.Size), strconv.Itoa(p.Ready), strconv.Itoa(p.Filling), of, p.Error})
	}
	return table(w, rows)
}
