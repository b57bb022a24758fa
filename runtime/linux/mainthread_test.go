package linux

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// TestMainThreadKeepsItsMountNamespace starts many containers in this
// process and checks that its main thread is still in the process's own
// mount namespace. Every start runs libcontainer's mount-source goroutine,
// which joins the container's mount namespace on a locked thread and exits
// without unlocking it; landing on the main thread, which Go cannot end, it
// would leave that thread in the container's namespace for good (Init says
// how that is prevented). Once that happened it stays, so the check at the
// end sees it whichever start it was.
func TestMainThreadKeepsItsMountNamespace(t *testing.T) {
	e := newEnv(t)
	// The default bundle has bind mounts (/sys/fs/cgroup's hierarchies), so
	// the mount-source thread serves requests before it exits.
	b := e.bundle("mounts", busybox.Options{})
	const rounds, perRound = 10, 5
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, perRound)
		for i := range perRound {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("m%02d-%d", round, i)
				c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: b})
				if err != nil {
					errs[i] = fmt.Errorf("start %s: %w", id, err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
				defer cancel()
				if err := c.Delete(ctx, true); err != nil {
					errs[i] = fmt.Errorf("delete %s: %w", id, err)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	own := threadMountNamespace(t)
	leader, err := os.Readlink("/proc/self/ns/mnt") // the main thread's
	if err != nil {
		t.Fatal(err)
	}
	if leader != own {
		t.Errorf("after %d starts the main thread is in mount namespace %s, the process's other threads in %s: a container's namespace holds it",
			rounds*perRound, leader, own)
	}
}

// threadMountNamespace returns the mount namespace of an ordinary thread of
// this process: the one this goroutine runs on, held while it is read.
func threadMountNamespace(t *testing.T) string {
	t.Helper()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	ns, err := os.Readlink("/proc/thread-self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}
