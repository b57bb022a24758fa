package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/troupe-run/troupe/cmd/troupe/internal/engine"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/remote"
)

// daemonRuntime is what the daemon needs of its runtime, whether package
// linux's in this process or the same runtime in the engine.
type daemonRuntime interface {
	remote.Engine
	Close() error
}

var (
	_ daemonRuntime = (*linux.Runtime)(nil)
	_ daemonRuntime = (*remote.Client)(nil)
)

// openRuntime makes the daemon's runtime: in-process, or, with --engine,
// in the engine embedded in this binary, run from a sealed memfd so that
// every container's init is the engine's slim binary rather than this
// one. The engine's client is returned too, nil in-process: its Done is
// closed when the engine has gone.
func openRuntime(o *daemonOptions, limits containerlog.Limits, logger *slog.Logger) (rt daemonRuntime, eng *remote.Client, err error) {
	lo := linux.Options{StateDir: o.state, CgroupParent: o.cgroupParent, CriuTimeout: o.criuTimeout,
		LogDir: filepath.Join(o.root, "logs"), LogLimits: limits, OnLogDrop: logDropWarner(logger)}
	if !o.engine {
		logger.Info("containers run in-process", "embedded-engine", engine.Embedded())
		r, err := linux.New(lo)
		return r, nil, err
	}
	c, err := startEngine(lo, o.criu)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("containers run in the engine")
	return c, c, nil
}

// startEngine runs the embedded engine with the runtime options lo and
// returns a client of it. The engine dies with the daemon (its parent-death
// signal); the containers it made live on, as they do when an in-process
// daemon dies.
func startEngine(lo linux.Options, criuPath string) (*remote.Client, error) {
	exe, err := engine.Open()
	if err != nil {
		return nil, fmt.Errorf("daemon: --engine: %w", err)
	}
	// The engines of this daemon's life run from this memfd; a running
	// engine keeps its executable, so the daemon's copy can go.
	defer exe.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("daemon: engine socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "engine"), os.NewFile(uintptr(fds[1]), "daemon")
	defer theirs.Close()
	args := []string{"serve", "-state", lo.StateDir, "-cgroup-parent", lo.CgroupParent, "-log-dir", lo.LogDir,
		"-log-max-size", strconv.FormatInt(lo.LogLimits.MaxSize, 10), "-log-max-files", strconv.Itoa(lo.LogLimits.MaxFiles),
		"-criu-timeout", lo.CriuTimeout.String()}
	if criuPath != "" {
		args = append(args, "-criu", criuPath)
	}
	cmd := exe.Command(context.Background(), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	if _, err := engine.Start(cmd); err != nil {
		ours.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("daemon: engine socket: %w", err)
	}
	return remote.NewClient(c.(*net.UnixConn)), nil
}
