package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/exeseal"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/linux"
)

// Options say what to test.
type Options struct {
	// Bundle is the absolute path of the OCI bundle to start.
	Bundle string
	// StateDir is the runtime's state directory; default a new temporary
	// directory, removed at the end.
	StateDir string
	// CgroupParent is where the containers' cgroups go; default
	// /troupe-selftest-<name of the state directory>, removed at the end.
	CgroupParent string
	// Starts is the number of sequential starts and force deletes to time
	// (0: none).
	Starts int
	// InitTraceArgs, when not nil, are the arguments with which this
	// process's executable is run under GODEBUG=inittrace=1, five times, to
	// count the packages it initialises: a container's init runs those same
	// package inits (libcontainer gives the init no GODEBUG of its own).
	InitTraceArgs []string
	// RequireSealed makes Run fail unless this process's executable is a
	// sealed memfd (libcontainer then copies nothing per start) and a
	// container's init runs that same executable.
	RequireSealed bool
	// Out receives the report.
	Out io.Writer
}

// Run runs the test and writes its report to o.Out.
func Run(ctx context.Context, o Options) (retErr error) {
	if !filepath.IsAbs(o.Bundle) {
		return fmt.Errorf("bundle %q must be an absolute path", o.Bundle)
	}
	selfExe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return err
	}
	cloned := exeseal.IsSelfExeCloned()
	fmt.Fprintf(o.Out, "self-exe: %s\nself-exe-cloned: %t\n", selfExe, cloned)
	if o.RequireSealed && !cloned {
		return errors.New("this executable is not a sealed memfd: libcontainer would copy it for every start")
	}

	if o.StateDir == "" {
		dir, err := os.MkdirTemp("", "troupe-selftest-")
		if err != nil {
			return err
		}
		defer func() { retErr = errors.Join(retErr, os.RemoveAll(dir)) }()
		o.StateDir = dir
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "/troupe-selftest-" + filepath.Base(o.StateDir)
	}
	rt, err := linux.New(linux.Options{StateDir: o.StateDir, CgroupParent: o.CgroupParent})
	if err != nil {
		return err
	}
	// Registered before the runtime's Close, so that it runs after it.
	defer removeCgroup(o.CgroupParent)
	defer rt.Close()

	initExe, err := preparedInitExe(ctx, rt, filepath.Join(o.StateDir, "containers"), o.Bundle)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "init-exe: %s\n", initExe)
	if o.RequireSealed && initExe != selfExe {
		return fmt.Errorf("a container's init runs %s, not this executable (%s)", initExe, selfExe)
	}

	if o.InitTraceArgs != nil {
		n, ms, err := packageInits(ctx, o.InitTraceArgs, 5)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "package-inits: %d (%.2f ms, median of 5 runs)\n", n, ms)
	}

	if o.Starts > 0 {
		wall, cpu, err := startDelete(ctx, rt, o.Bundle, o.Starts)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "starts: %d, wall median %.2f ms, cpu per start %.2f ms\n",
			o.Starts, ms(wall), ms(cpu))
	}
	return nil
}

// preparedInitExe prepares a container from bundle, whose init then waits
// before it execs the bundle's process, and returns what that init runs
// (its /proc/PID/exe); the container is discarded.
func preparedInitExe(ctx context.Context, rt *linux.Runtime, stateRoot, bundle string) (_ string, retErr error) {
	p, err := rt.Prepare(ctx, bundle)
	if err != nil {
		return "", err
	}
	defer func() { retErr = errors.Join(retErr, p.Discard(context.WithoutCancel(ctx))) }()
	// The runtime is this test's own: its only prepared container is this
	// one. Its init's pid is in libcontainer's state.
	entries, err := os.ReadDir(stateRoot)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "+warm-") {
			continue
		}
		lc, err := libcontainer.Load(stateRoot, e.Name())
		if err != nil {
			return "", err
		}
		st, err := lc.State()
		if err != nil {
			return "", err
		}
		return os.Readlink("/proc/" + strconv.Itoa(st.InitProcessPid) + "/exe")
	}
	return "", fmt.Errorf("prepared container not found in %s", stateRoot)
}

// packageInits runs this process's executable with args under
// GODEBUG=inittrace=1 runs times and returns the number of packages it
// initialised and the median of their total clock time in ms.
func packageInits(ctx context.Context, args []string, runs int) (int, float64, error) {
	var n int
	var totals []float64
	for range runs {
		cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// Its exit status does not matter: the package inits ran before.
		_ = cmd.Run()
		count, total := parseInitTrace(stderr.String())
		if count == 0 {
			return 0, 0, fmt.Errorf("no inittrace from %v: %s", args, stderr.String())
		}
		n = count
		totals = append(totals, total)
	}
	slices.Sort(totals)
	return n, totals[len(totals)/2], nil
}

// parseInitTrace counts the "init PKG @T ms, D ms clock, ..." lines of Go's
// inittrace and sums their clock times.
func parseInitTrace(s string) (count int, ms float64) {
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "init ") {
			continue
		}
		count++
		f := strings.Fields(line)
		// init PKG @T ms, D ms clock, ...
		if len(f) > 6 && f[6] == "clock," {
			if d, err := strconv.ParseFloat(f[4], 64); err == nil {
				ms += d
			}
		}
	}
	return count, ms
}

// startDelete starts a container from bundle and force-deletes it, n times
// one after the other, and returns the median wall time of one start and
// delete and the CPU per start: this process's and its reaped children's
// (the containers' inits and libcontainer's stages before them), over all
// n.
func startDelete(ctx context.Context, rt *linux.Runtime, bundle string, n int) (wall, cpu time.Duration, err error) {
	walls := make([]time.Duration, 0, n)
	cpu0 := cpuTime()
	for i := range n {
		t0 := time.Now()
		c, err := rt.Start(ctx, "selftest-"+strconv.Itoa(i), runtime.StartOptions{BundlePath: bundle})
		if err != nil {
			return 0, 0, err
		}
		if err := c.Delete(ctx, true); err != nil {
			return 0, 0, err
		}
		walls = append(walls, time.Since(t0))
	}
	cpu = (cpuTime() - cpu0) / time.Duration(n)
	slices.Sort(walls)
	return walls[len(walls)/2], cpu, nil
}

// cpuTime is the user and system time of this process and of its children
// that were waited for.
func cpuTime() time.Duration {
	var d time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			d += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return d
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// removeCgroup removes the cgroup parent in every hierarchy, deepest
// first; the containers below it are deleted by then.
func removeCgroup(parent string) {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	roots = append(roots, filepath.Join("/sys/fs/cgroup", parent)) // cgroup v2
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}
