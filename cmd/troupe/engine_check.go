package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/cmd/internal/selftest"
	"github.com/troupe-run/troupe/cmd/troupe/internal/engine"
)

// newEngineCheckCommand is `troupe engine-check BUNDLE`, hidden: it runs
// the embedded engine from its sealed memfd and has it test itself on a
// bundle (package cmd/internal/selftest). With --in-process this binary
// runs the same test itself, as the daemon starts containers today, for
// comparison.
func newEngineCheckCommand() *cobra.Command {
	var (
		starts       int
		inProcess    bool
		timeout      time.Duration
		state        string
		cgroupParent string
	)
	cmd := &cobra.Command{
		Use:    "engine-check BUNDLE",
		Short:  "run the embedded engine's self-test on a bundle (root)",
		Hidden: true,
		Long: `Run the engine embedded in this binary from a sealed memfd and have it test
itself on BUNDLE: whether libcontainer sees its executable as sealed (and so
copies nothing per start), what a prepared container's init runs, how many
packages the engine initialises, and with --n the cost of that many
sequential starts and deletes. --in-process runs the same test in this
binary instead, as the daemon starts containers today.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bundle, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if inProcess {
				return selftest.Run(ctx, selftest.Options{
					Bundle:        bundle,
					StateDir:      state,
					CgroupParent:  cgroupParent,
					Starts:        starts,
					InitTraceArgs: []string{"version", "--help"},
					Out:           cmd.OutOrStdout(),
				})
			}
			e, err := engine.Open()
			if err != nil {
				return err
			}
			defer e.Close()
			argv := []string{"selftest", "-n", strconv.Itoa(starts)}
			if state != "" {
				argv = append(argv, "-state", state)
			}
			if cgroupParent != "" {
				argv = append(argv, "-cgroup-parent", cgroupParent)
			}
			c := e.Command(ctx, append(argv, bundle)...)
			c.Stdout, c.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			done, err := engine.Start(c)
			if err != nil {
				return err
			}
			if err := <-done; err != nil {
				return fmt.Errorf("engine self-test: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&starts, "n", 0, "time this many sequential starts and deletes of the bundle")
	f.BoolVar(&inProcess, "in-process", false, "run the test in this binary instead of the engine")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "deadline of the whole test")
	f.StringVar(&state, "state", "", "runtime state directory (default: a temporary one)")
	f.StringVar(&cgroupParent, "cgroup-parent", "", "cgroup parent of the containers (default: one named after the state directory)")
	return cmd
}
