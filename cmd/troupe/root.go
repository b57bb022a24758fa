package main

import (
	"fmt"
	goruntime "runtime"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "troupe",
		Short:         "troupe runs Linux containers from OCI bundles, one actor per container",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newDaemonCommand())
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "troupe %s (%s, %s/%s)\n", version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
			return err
		},
	})
	return root
}
