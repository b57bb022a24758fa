package bench

import "context"

// Target is a system that starts containers: troupe through its REST API,
// or another runtime (crun, runc, containerd) through its command line. The
// benchmark drives every target with the same workload and times each Start
// as a client sees it.
type Target interface {
	// Name is how reports call the target: "troupe", "crun", "runc",
	// "containerd".
	Name() string
	// Setup prepares to start containers from the OCI bundle at bundle
	// (busybox sleep, read-only rootfs, shared by every container): checks
	// that the target is installed and reachable, starts private daemons.
	// It returns an error naming what is missing.
	Setup(ctx context.Context, bundle string) error
	// Start creates and starts container id and returns once its init runs.
	// It is called concurrently.
	Start(ctx context.Context, id string) error
	// OverheadPids are the processes whose memory is the target's cost per
	// running container beyond the containers themselves: the daemon, its
	// shims. Called while the containers of a run are up.
	OverheadPids(ctx context.Context) ([]int, error)
	// Teardown removes every container Start started (killing them) and
	// whatever Setup made, and leaves nothing behind.
	Teardown(ctx context.Context) error
}
