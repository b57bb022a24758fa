package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ociCLI is a target that drives an OCI runtime's command line, runc's or
// one shaped like it (crun): a private state root, a bundle per container
// and `run -d`. No process of its own stays behind a running container, so
// its overhead is none.
type ociCLI struct {
	name    string // the target's name
	command string // the runtime's command
	pkg     string // the Debian package that provides it
	// ociVersion, if set, replaces the bundle's ociVersion in each
	// container's config.
	ociVersion string
	// cgroupParent holds every container's cgroup.
	cgroupParent string
	// cgroupRoot is where the cgroup hierarchies are mounted.
	cgroupRoot string

	// Set by setup, read by the concurrent Starts.
	binary string   // the runtime's absolute path
	prefix []string // argv that runs the binary (crun: nsenter ...)
	dir    string   // the work dir: state root and bundles
	config *cliConfig

	started idSet
	// mu serialises setup and teardown.
	mu sync.Mutex
}

// newRunc returns the runc target: Debian's runc 1.1.5, one `runc run -d`
// per start.
func newRunc() *ociCLI {
	return &ociCLI{
		name:         "runc",
		command:      "runc",
		pkg:          "runc",
		cgroupParent: cgroupParent("runc"),
		cgroupRoot:   cgroupRoot,
	}
}

// Name returns the target's name.
func (c *ociCLI) Name() string { return c.name }

// stateRoot is the runtime's private --root.
func (c *ociCLI) stateRoot() string { return filepath.Join(c.dir, "state") }

// bundles holds the containers' bundles.
func (c *ociCLI) bundles() string { return filepath.Join(c.dir, "bundles") }

// Setup finds the runtime, loads the bundle and makes a
// private work dir for the state root and the containers' bundles.
func (c *ociCLI) Setup(ctx context.Context, bundlePath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setup(ctx, bundlePath)
}

// setup is Setup with c.mu held.
func (c *ociCLI) setup(ctx context.Context, bundlePath string) error {
	if c.dir != "" {
		return fmt.Errorf("%s: already set up", c.name)
	}
	binary, err := requireCommand(c.command, c.pkg)
	if err != nil {
		return err
	}
	config, err := loadCLIConfig(bundlePath, c.cgroupParent, c.ociVersion)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "troupe-bench-"+c.name+"-")
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	for _, d := range []string{filepath.Join(dir, "state"), filepath.Join(dir, "bundles")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	c.binary, c.config, c.dir = binary, config, dir
	return nil
}

// argv is the command line that runs the runtime with args, on the private
// state root.
func (c *ociCLI) argv(args ...string) []string {
	argv := make([]string, 0, len(c.prefix)+3+len(args))
	argv = append(argv, c.prefix...)
	argv = append(argv, c.binary, "--root", c.stateRoot())
	return append(argv, args...)
}

// Start writes the container's config.json and runs `run -d`, which
// returns once the container's init runs the bundle's command. Stdin is
// /dev/null and stdout and stderr a log file in the container's bundle, as
// a detached container without a terminal inherits the runtime's stdio.
func (c *ociCLI) Start(ctx context.Context, id string) error {
	if err := checkCLIID(id); err != nil {
		return err
	}
	if c.config == nil {
		return fmt.Errorf("%s: start container %q: not set up", c.name, id)
	}
	if !c.started.add(id) {
		return fmt.Errorf("%s: start container %q: already started", c.name, id)
	}
	b, err := c.config.write(c.bundles(), id)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	log, err := os.OpenFile(filepath.Join(b, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: start container %q: %w", c.name, id, err)
	}
	defer log.Close()
	if err := runCLI(ctx, log, c.argv("run", "--detach", "--bundle", b, id)...); err != nil {
		return fmt.Errorf("%s: start container %q: %w", c.name, id, err)
	}
	return nil
}

// OverheadPids returns none: after `run -d` the runtime's process is gone
// and nothing but the container stays.
func (c *ociCLI) OverheadPids(context.Context) ([]int, error) { return []int{}, nil }

// Teardown kills and deletes every container of the state root and every
// one Start was asked for (a failed start may leave state behind), a few
// at a time, then removes the cgroups and the work dir.
func (c *ociCLI) Teardown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.teardown(ctx)
}

// teardown is Teardown with c.mu held.
func (c *ociCLI) teardown(ctx context.Context) error {
	if c.dir == "" {
		return nil
	}
	var errs []error
	listed, err := c.list(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	ids := c.started.take(listed...)
	// Kill them all first, so they die in parallel while the deletes, which
	// wait for each death, go through one by one.
	_ = forEachBounded(ids, cliTeardownConcurrency, func(id string) error {
		return runCLI(ctx, nil, c.argv("kill", id, "KILL")...)
	})
	err = forEachBounded(ids, cliTeardownConcurrency, func(id string) error {
		err := runCLI(ctx, nil, c.argv("delete", "--force", id)...)
		if err != nil && !isNotExist(err) {
			return fmt.Errorf("%s: delete container %q: %w", c.name, id, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, firstErrors(splitJoined(err), 5))
	}
	if err := killCgroupLeftovers(c.cgroupRoot, c.cgroupParent); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
	}
	if err := removeCgroupTree(ctx, c.cgroupRoot, c.cgroupParent); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
	}
	if err := removeWorkDir(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
	}
	c.dir, c.config = "", nil
	return errors.Join(errs...)
}

// list returns the ids of the containers in the state root.
func (c *ociCLI) list(ctx context.Context) ([]string, error) {
	out, err := outputCLI(ctx, c.argv("list", "--quiet")...)
	if err != nil {
		return nil, fmt.Errorf("%s: list containers: %w", c.name, err)
	}
	return strings.Fields(out), nil
}

// isNotExist reports whether a runtime's error says the container does not
// exist (runc: "container does not exist"; crun: "No such file or
// directory"; ctr: "not found").
func isNotExist(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "does not exist") || strings.Contains(msg, "No such file or directory") ||
		strings.Contains(msg, "not found")
}
