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
		Short: "keep containers of a bundle prepared ahead (warm pools)",
		Long: `A warm pool keeps SIZE containers of one bundle prepared ahead: namespaces,
mounts and cgroups made, the init waiting just before it execs the bundle's
process. A start of that bundle then claims one (its answer says "warm") and
the pool refills in the background; with none ready a start is cold as
usual. Pools do not outlive the daemon.`,
		GroupID: groupContainers,
	}
	cmd.AddCommand(newPoolSetCommand(o), newPoolListCommand(o), newPoolRemoveCommand(o))
	return cmd
}

func newPoolSetCommand(o *globalOptions) *cobra.Command {
	var size int
	cmd := &cobra.Command{
		Use:   "set NAME [BUNDLE] --size N",
		Short: "create a pool for BUNDLE, or resize pool NAME",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("size") {
				return fmt.Errorf("pool set: --size is required")
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
	rows := [][]string{{"NAME", "SIZE", "READY", "FILLING", "BUNDLE", "ERROR"}}
	for _, p := range ps {
		rows = append(rows, []string{p.Name, strconv.Itoa(p.Size), strconv.Itoa(p.Ready), strconv.Itoa(p.Filling), p.BundlePath, p.Error})
	}
	return table(w, rows)
}
