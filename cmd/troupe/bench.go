package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-run/troupe/bench"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// benchOptions are the flags of `troupe bench`.
type benchOptions struct {
	n, concurrency int
	bundle         string
	plot           string
	compare        []string
	density        bool
	daemonPid      int
	idPrefix       string
	warm           bool
	image          string
	runs           int
	settle         time.Duration
}

// newBenchCommand is `troupe bench`: the load benchmark against the daemon
// at --address, optionally side by side with other runtimes.
func newBenchCommand(o *globalOptions) *cobra.Command {
	b := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "start many containers at once and report the start latency",
		Long: `Start --n containers (default 1000) through the daemon's API at --address, at
most --concurrency at a time (default: all at once), and time each start as a
client sees it: from sending the request to the 201 with the container
running. Then print the reference benchmark's table (count, min, max, mean,
stddev, median, 75%, 95%, 99%, 99.9%), containers/s, the machine's CPU per
start, failures with the first errors and the teardown time, and delete every
container the run started.

Without --bundle a busybox bundle (sleep 3600, read-only rootfs shared by
all) is made in a temporary directory and removed at the end; the daemon must
run on this machine to see it. A --bundle must be a path on the daemon's
machine.

--warm adds a run of troupe with a warm pool (troupe pool): before it, the
daemon prepares --n containers of the bundle; each start then claims one. The
pool refills during the run, as in use. Warm and cold starts are never mixed:
a start of the warm run that the daemon served cold counts as a failure.

--image REF adds a run of troupe starting every container from that image
in the daemon's store (column troupe-image), pulled first if missing; the
bundle's run beside it is the comparison (hack/bench-images.sh runs both on
an image made of the bundle's own busybox tree).

--compare runs the same workload, after troupe's, through other runtimes'
command lines (crun, runc, containerd) and prints one table with a column per
runtime and ratios to troupe. --density measures the memory of the daemon
(and of containerd's shims) per running container, from /proc/PID/smaps_rollup,
before the teardown; troupe's daemon is found through the unix socket, or
given with --daemon-pid. --plot FILE.svg draws the latency histogram and
cumulative distribution. With --json the results are one JSON document; a
progress bar goes to stderr when it is a terminal.`,
		Example: `  troupe bench
  troupe bench --n 1000 --concurrency 10 --density
  troupe bench --compare crun,runc,containerd --plot bench.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := interruptible(cmd)
			defer cancel()
			return runBench(ctx, cmd, o, b)
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.n, "n", bench.DefaultN, "how many containers to start")
	f.IntVar(&b.concurrency, "concurrency", 0, "starts in flight at most (0: all --n at once)")
	f.StringVar(&b.bundle, "bundle", "", "the OCI bundle `DIR` to start every container from (default: a busybox sleep bundle made for the run)")
	f.StringVar(&b.plot, "plot", "", "write a latency histogram and CDF to `FILE` (.svg)")
	f.StringSliceVar(&b.compare, "compare", nil, "also run the workload through these runtimes' CLIs: crun, runc, containerd")
	f.BoolVar(&b.density, "density", false, "measure the daemon's memory (RSS, PSS) per running container")
	f.IntVar(&b.daemonPid, "daemon-pid", 0, "the daemon's `PID` for --density (default: the peer of the unix socket)")
	f.StringVar(&b.idPrefix, "id-prefix", bench.DefaultIDPrefix, "start of every container id")
	f.DurationVar(&b.settle, "density-settle", bench.DefaultSettle, "with --density, leave the target alone this long before each measurement (0s: measure at once)")
	f.IntVar(&b.runs, "runs", 1, "run the workload this many times per target, interleaved, and report the medians")
	f.BoolVar(&b.warm, "warm", false, "also run troupe with a warm pool of --n prepared containers (column troupe-warm; with --image also troupe-image-warm, a pool of the image)")
	f.StringVar(&b.image, "image", "", "also run troupe starting every container from this image in the daemon's store, pulled first if missing (column troupe-image)")
	return cmd
}

func runBench(ctx context.Context, cmd *cobra.Command, o *globalOptions, b *benchOptions) error {
	if b.n <= 0 {
		return fmt.Errorf("bench: --n must be positive")
	}
	if b.runs < 1 {
		return fmt.Errorf("bench: --runs must be positive")
	}
	if b.concurrency < 0 {
		return fmt.Errorf("bench: --concurrency must not be negative")
	}
	if b.plot != "" {
		// Fail before a long run, not after it.
		if ext := strings.ToLower(filepath.Ext(b.plot)); ext != ".svg" {
			return fmt.Errorf("bench: --plot %s: only .svg is drawn", b.plot)
		}
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	troupe, err := bench.NewTroupe(bench.TroupeOptions{Address: o.address, Client: c, DaemonPid: b.daemonPid})
	if err != nil {
		return err
	}
	targets := []bench.Target{troupe}
	if b.image != "" {
		fromImage, err := bench.NewTroupe(bench.TroupeOptions{Address: o.address, Client: c, DaemonPid: b.daemonPid, Image: b.image})
		if err != nil {
			return err
		}
		targets = append(targets, fromImage)
	}
	var warms []*bench.TroupeWarm
	if b.warm {
		warm, err := bench.NewTroupeWarm(bench.TroupeOptions{Address: o.address, Client: c, DaemonPid: b.daemonPid}, b.n)
		if err != nil {
			return err
		}
		targets = append(targets, warm)
		warms = append(warms, warm)
		if b.image != "" {
			imageWarm, err := bench.NewTroupeWarm(bench.TroupeOptions{Address: o.address, Client: c, DaemonPid: b.daemonPid, Image: b.image}, b.n)
			if err != nil {
				return err
			}
			targets = append(targets, imageWarm)
			warms = append(warms, imageWarm)
		}
	}
	for _, name := range b.compare {
		t, err := bench.NewCompareTarget(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("bench: --compare: %w", err)
		}
		targets = append(targets, t)
	}

	bundle := b.bundle
	if bundle == "" {
		dir, err := os.MkdirTemp("", "troupe-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		if bundle, err = benchBundle(dir); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	} else if bundle, err = filepath.Abs(bundle); err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	opts := bench.Options{
		N: b.n, Concurrency: b.concurrency, Bundle: bundle, IDPrefix: b.idPrefix,
		Progress: cmd.ErrOrStderr(), Density: b.density, Settle: b.settle,
	}
	if opts.Settle == 0 {
		opts.Settle = -1 // at once: Options reads 0 as the default
	}
	// Runs interleave the targets (troupe, crun, troupe, crun...), so that a
	// machine that drifts during the benchmark weighs on all alike.
	perTarget := make([][]*bench.Result, len(targets))
	var problems []error
	failed := make([]bool, len(targets))
runs:
	for run := 0; run < b.runs; run++ {
		for i, t := range targets {
			if failed[i] {
				continue
			}
			if b.runs > 1 {
				cmd.PrintErrf("bench: run %d of %d: %s\n", run+1, b.runs, t.Name())
			}
			res, err := bench.Run(ctx, t, opts)
			if res != nil {
				perTarget[i] = append(perTarget[i], res)
			}
			if err != nil {
				problems = append(problems, err)
				if i == 0 || ctx.Err() != nil {
					// Without troupe's figures there is nothing to compare
					// with; after an interruption, stop but report what ran.
					break runs
				}
				cmd.PrintErrln("bench:", err)
				failed[i] = true
			}
		}
	}
	var results []*bench.Result
	for _, rs := range perTarget {
		if len(rs) > 0 {
			results = append(results, bench.MedianOf(rs))
		}
	}
	if len(results) > 0 {
		if err := printBench(cmd, o, results); err != nil {
			return err
		}
		if b.runs > 1 && !o.json {
			cmd.Printf("\nfigures are the medians of %d runs, each on its own; the runs:\n", b.runs)
			for _, r := range results {
				for i, f := range r.Runs {
					cmd.Printf("  %-12s run %d: %s\n", r.Target, i+1, f)
				}
			}
		}
		for _, warm := range warms {
			if warm.Fill > 0 && !o.json {
				cmd.Printf("\n%s: a pool of %d prepared containers made in %.2fs before its run (%.1f/s); its starts claim them, cold ones count as failures\n",
					warm.Name(), b.n, warm.Fill.Seconds(), float64(b.n)/warm.Fill.Seconds())
			}
		}
		if b.plot != "" {
			if err := bench.SavePlot(b.plot, results); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
	}
	for _, r := range results {
		if r.Failures > 0 {
			problems = append(problems, fmt.Errorf("%s: %d of %d starts failed", r.Target, r.Failures, r.Attempted))
		}
		if r.TeardownErr != nil {
			problems = append(problems, fmt.Errorf("%s: teardown: %w", r.Target, r.TeardownErr))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bench: %w", errors.Join(problems...))
	}
	return nil
}

// benchBundle makes the default workload in dir: a busybox rootfs and a
// bundle that shares it read-only, running sleep 3600.
func benchBundle(dir string) (string, error) {
	// Readable by all: a container's root in a user namespace must reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	rootfs, err := busybox.Rootfs(filepath.Join(dir, "rootfs"))
	if err != nil {
		return "", err
	}
	return busybox.Bundle(filepath.Join(dir, "bundle"), busybox.Options{Rootfs: rootfs, Args: []string{"sleep", "3600"}})
}

func printBench(cmd *cobra.Command, o *globalOptions, results []*bench.Result) error {
	w := cmd.OutOrStdout()
	switch {
	case o.json:
		return bench.WriteJSON(w, results)
	case len(results) == 1:
		return bench.WriteReport(w, results[0])
	default:
		return bench.WriteComparison(w, results)
	}
}
