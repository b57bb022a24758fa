// Command troupe is the troupe container daemon, its command-line client,
// and — re-executed by libcontainer with the argument "init" — the init of
// every container it starts.
package main

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/automaxprocs/maxprocs"

	"github.com/troupe-run/troupe/runtime/linux"
)

func main() {
	// A container's init became that init in the package's initialisation
	// (it never returns then), on the main thread; see linux.Init.
	linux.Init()
	// Explicit, not a blank import: automaxprocs' init would log into every
	// container's stdout, since package inits also run in each init.
	if _, err := maxprocs.Set(); err != nil {
		fmt.Fprintf(os.Stderr, "troupe: maxprocs: %v\n", err)
	}
	if err := newRootCommand().Execute(); err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		os.Exit(1)
	}
}
