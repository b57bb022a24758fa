package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/troupe-run/troupe/cmd/internal/memory"
	"github.com/troupe-run/troupe/runtime/criu"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/remote"
)

// serve runs package linux's runtime for the daemon at the other end of
// fd 3 until the daemon closes it. The containers outlive the engine, as
// they outlive an in-process daemon: the next engine loads them.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var o linux.Options
	fs.StringVar(&o.StateDir, "state", "", "runtime state directory")
	fs.StringVar(&o.CgroupParent, "cgroup-parent", linux.DefaultCgroupParent, "cgroup parent of the containers")
	fs.StringVar(&o.LogDir, "log-dir", "", "directory of the containers' logs")
	fs.Int64Var(&o.LogLimits.MaxSize, "log-max-size", 0, "bytes at which a container's log rotates (0: the default)")
	fs.IntVar(&o.LogLimits.MaxFiles, "log-max-files", 0, "log files kept per container (0: the default)")
	fs.DurationVar(&o.CriuTimeout, "criu-timeout", linux.DefaultCriuTimeout, "deadline of a checkpoint or restore per GiB of memory")
	criuPath := fs.String("criu", "", "the criu binary checkpoints and restores run (default: criu on PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.StateDir == "" || o.LogDir == "" {
		return errors.New("-state and -log-dir are required")
	}
	if err := o.LogLimits.Validate(); err != nil {
		return err
	}
	// The daemon logs for both: what the engine says goes to the same
	// stderr, marked as the engine's.
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "engine")
	if *criuPath != "" {
		// A CRIU that is missing or broken fails checkpoints only; the
		// daemon's own self-test says so.
		if _, err := criu.Use(*criuPath); err != nil {
			logger.Warn("criu", "err", err)
		}
	}
	o.OnLogDrop = func(path string, bytes int, err error) {
		logger.Warn("container output dropped: its log cannot take it", "log", path, "bytes", bytes, "err", err)
	}
	f := os.NewFile(3, "daemon")
	if f == nil {
		return errors.New("no fd 3: the daemon passes its end of a socket pair there")
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("fd 3: %w", err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("fd 3 is a %T, want a unix socket", c)
	}
	rt, err := linux.New(o)
	if err != nil {
		return err
	}
	defer rt.Close()
	// The daemon ends the engine by closing its socket; a signal that
	// reaches the engine alone (a shutdown of the process group) is no
	// reason to stop serving the daemon. Caught, not ignored: an ignored
	// signal stays ignored in what the engine executes (CRIU, whose restore
	// then never finished).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go memory.ReturnWhenQuiet(ctx, logger)
	return remote.Serve(ctx, conn, rt)
}
