// Command troupe-engine is the small program that will run troupe's
// runtime (package linux, libcontainer) for the daemon, and the init of
// every container it starts: libcontainer re-executes /proc/self/exe with
// the argument "init", and this binary links little else, so that a
// container's init initialises 78 packages instead of the daemon's 210.
//
// It is not installed on its own: `make build` embeds it in troupe, which
// runs it from a sealed memfd (cmd/troupe/internal/engine). libcontainer
// sees that /proc/self/exe is sealed (exeseal.IsSelfExeCloned) and then
// execs it as it is, without copying or sealing a binary per start.
//
// The daemon runs it as its runtime (troupe daemon --engine): it serves
// package linux's runtime over the unix socket it gets as fd 3, with
// package remote's protocol, until the daemon closes it or dies:
//
//	troupe-engine serve -state DIR -cgroup-parent PATH -log-dir DIR [...]
//
// and it has a self-test (package cmd/internal/selftest):
//
//	troupe-engine selftest [-n STARTS] [-state DIR] [-cgroup-parent PATH] BUNDLE
//
// Keep its imports few: every package linked here runs its init in every
// container start. No cobra, no slog handlers beyond the standard ones, no
// gin, protoactor or prometheus.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/troupe-run/troupe/cmd/internal/selftest"
	"github.com/troupe-run/troupe/runtime/linux"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  troupe-engine serve -state DIR -cgroup-parent PATH -log-dir DIR [-log-max-size N] [-log-max-files N] [-criu PATH] [-criu-timeout D]
  troupe-engine selftest [-n STARTS] [-state DIR] [-cgroup-parent PATH] BUNDLE
  troupe-engine version
`

func main() {
	// A container's init became that init in the package's initialisation
	// (it never returns then), on the main thread; see linux.Init.
	linux.Init()
	nameThreads("troupe-engine")
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "troupe-engine: serve: %v\n", err)
			os.Exit(1)
		}
	case "selftest":
		if err := runSelftest(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "troupe-engine: selftest: %v\n", err)
			os.Exit(1)
		}
	case "version":
		fmt.Println("troupe-engine", version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// nameThreads names every thread of this process. Executed from
// /proc/PID/fd/N, the engine is named "N" by the kernel, and so is each
// thread the Go runtime has started by now; ps and perf should say what
// it is. Threads started later inherit the name of the one that starts
// them, which is one of these.
func nameThreads(name string) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, task := range tasks {
		_ = os.WriteFile("/proc/self/task/"+task.Name()+"/comm", []byte(name), 0)
	}
}

func runSelftest(args []string) error {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	starts := fs.Int("n", 0, "time this many sequential starts and deletes of the bundle")
	state := fs.String("state", "", "runtime state directory (default: a temporary one)")
	cgroup := fs.String("cgroup-parent", "", "cgroup parent of the containers (default: one named after the state directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one BUNDLE, got %d arguments", fs.NArg())
	}
	bundle, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	return selftest.Run(context.Background(), selftest.Options{
		Bundle:        bundle,
		StateDir:      *state,
		CgroupParent:  *cgroup,
		Starts:        *starts,
		InitTraceArgs: []string{"version"},
		// The engine exists to be sealed: a copy per start is a failure.
		RequireSealed: true,
		Out:           os.Stdout,
	})
}
