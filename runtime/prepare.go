package runtime

import "context"

// A Preparer makes containers ahead of need, for a warm pool (the zygote
// idea of SOCK, USENIX ATC'18): namespaces, mounts and cgroups are made and
// the init waits just before it execs the bundle's process, so that a start
// is only a Claim. Runtimes that cannot do this do not implement it.
type Preparer interface {
	// Prepare creates a container from the bundle whose init waits; it has
	// no id yet and is not listed. On any error nothing of it is left.
	Prepare(ctx context.Context, bundlePath string) (Prepared, error)
}

// Prepared is a container made ahead of need. Exactly one of Claim and
// Discard must be called on it, once.
type Prepared interface {
	// BundlePath returns the bundle it was made from.
	BundlePath() string
	// Stale says whether the bundle's config.json changed since it was
	// made: claiming it would start the old configuration.
	Stale() bool
	// Claim gives it the id and lets its init exec the bundle's process:
	// it is then an ordinary running Container. errclass.AlreadyExists when the
	// id is taken (the prepared container is left intact and can be claimed
	// again or discarded); after any other error it is gone.
	Claim(ctx context.Context, id string, o ClaimOptions) (Container, error)
	// Discard destroys it and everything it holds.
	Discard(ctx context.Context) error
}

// ClaimOptions are what a claim still decides of a prepared container.
type ClaimOptions struct {
	// Hostname, when set, names the host in the container's UTS namespace
	// before its process starts. A container from an image is named after
	// its id, which a prepared one cannot know.
	Hostname string
}
