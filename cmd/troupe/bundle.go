package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
)

// newBundleCommand is `troupe bundle DIR [-- ARGS...]`: a busybox bundle to
// try troupe with, without an image store.
func newBundleCommand() *cobra.Command {
	var readOnly, imageSpec bool
	cmd := &cobra.Command{
		Use:   "bundle DIR [-- ARGS...]",
		Short: "write a busybox OCI bundle to DIR (needs busybox-static)",
		Long: `Write an OCI bundle to DIR: a rootfs with a copy of the host's static
busybox and a config.json running ARGS (default: sleep 3600) in fresh
namespaces. Handy for trying the API and for benchmarks.

--image-spec writes instead the spec troupe makes for a container started
from an image of that rootfs (troupe's default seccomp profile,
capabilities and mounts; its hostname is "bundle"): the bundle that a start
from an image is compared with (hack/bench-images.sh).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if _, err := busybox.Bundle(dir, busybox.Options{Args: args[1:], ReadOnly: readOnly}); err != nil {
				return err
			}
			if imageSpec {
				if err := writeImageSpec(dir, args[1:], readOnly); err != nil {
					return err
				}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dir)
			return err
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "make the root filesystem read-only")
	cmd.Flags().BoolVar(&imageSpec, "image-spec", false, "write the spec troupe makes for a container from an image of this rootfs")
	return cmd
}

// writeImageSpec replaces the bundle's spec at dir by the one a start from
// an image of its rootfs would get.
func writeImageSpec(dir string, args []string, readOnly bool) error {
	if len(args) == 0 {
		args = []string{"sleep", "3600"}
	}
	spec, err := imagespec.Generate("bundle", filepath.Join(dir, "rootfs"), imagespec.Image{Cmd: args},
		imagespec.Overrides{ReadOnlyRoot: readOnly})
	if err != nil {
		return err
	}
	return bundle.Write(dir, spec)
}
