package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/runtime/criu"
)

// newCheckCriuCommand is `troupe check-criu`: the self-test the daemon runs
// at start, on its own, so that make criu chooses a CRIU by it.
func newCheckCriuCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check-criu [CRIU]",
		Short: "test whether a CRIU can checkpoint and restore here (root)",
		Long: `Test a CRIU the way the daemon does at start: dump and restore a small
process tree that keeps forking, in pid and network namespaces of its own,
within --timeout. criu check and the version are no verdict: some CRIU
versions pass criu check and then hang on every dump on some kernels.

CRIU defaults to the daemon's default (make criu's, else criu on PATH).
It exits 0 when the CRIU works, else 1 with the reason.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := defaultCriu()
			if len(args) == 1 {
				path = args[0]
			}
			t0 := time.Now()
			version, err := criu.SelfTest(cmd.Context(), path, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "criu %s (%s): dumped and restored a forking process tree in %.2fs\n",
				version, path, time.Since(t0).Seconds())
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", criu.DefaultSelfTestTimeout, "deadline of the whole test")
	return cmd
}
