package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// newBundleCommand is `troupe bundle DIR [-- ARGS...]`: a busybox bundle to
// try troupe with, without an image store.
func newBundleCommand() *cobra.Command {
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "bundle DIR [-- ARGS...]",
		Short: "write a busybox OCI bundle to DIR (needs busybox-static)",
		Long: `Write an OCI bundle to DIR: a rootfs with a copy of the host's static
busybox and a config.json running ARGS (default: sleep 3600) in fresh
namespaces. Handy for trying the API and for benchmarks.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if _, err := busybox.Bundle(dir, busybox.Options{Args: args[1:], ReadOnly: readOnly}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dir)
			return err
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "make the root filesystem read-only")
	return cmd
}
