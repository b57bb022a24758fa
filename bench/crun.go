package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// crun 1.8.1 refuses a host with hybrid cgroups (v1 controllers plus a
// cgroup2 mount at /sys/fs/cgroup/unified): "cgroups in hybrid mode not
// supported, drop all controllers from cgroupv2". It decides from what is
// mounted, so the crun target runs every crun command in a private mount
// namespace where /sys/fs/cgroup/unified is unmounted: crun then sees a
// plain cgroup v1 host. The host's mounts are untouched (the namespace's
// propagation is private).
//
// That namespace is made once per run by a helper process — `unshare
// --mount --propagation private sh -c 'umount ...; exec sleep infinity'` —
// and each crun command enters it with `nsenter --target <helper>
// --mount`. The alternative, a fresh `unshare --mount sh -c 'umount ...;
// exec crun ...'` per command, costs about 4 ms more per start: measured
// here, 100 sequential starts took 1.11–1.16 s through nsenter and
// 1.43–1.64 s through unshare (the fork of sh, the copy of the mount table
// and the umount, each time). nsenter changes the working directory to the
// namespace's root, so every path given to crun is absolute.
//
// crun 1.8.1 also accepts only ociVersion 1.0.x ("unknown version
// specified"); the containers' configs say 1.0.2. Nothing in the busybox
// spec needs a later version.

// crunOCIVersion is the ociVersion crun 1.8.1 accepts.
const crunOCIVersion = "1.0.2"

// crunTarget is the crun target: Debian's crun 1.8.1 driven like runc, in a
// mount namespace of its own when the host has hybrid cgroups.
type crunTarget struct {
	*ociCLI
	// unified is the cgroup2 mount of a hybrid host, hidden from crun.
	unified string
	// helper holds the private mount namespace; nil when crun runs in the
	// host's (no hybrid cgroups) or before Setup.
	helper     *exec.Cmd
	helperDone chan struct{}
}

// newCrun returns the crun target.
func newCrun() *crunTarget {
	return &crunTarget{
		ociCLI: &ociCLI{
			name:         "crun",
			command:      "crun",
			pkg:          "crun",
			ociVersion:   crunOCIVersion,
			cgroupParent: cgroupParent("crun"),
			cgroupRoot:   cgroupRoot,
		},
		unified: filepath.Join(cgroupRoot, "unified"),
	}
}

// Setup finds crun, and on a hybrid cgroup host starts the
// helper whose mount namespace every crun command runs in.
func (c *crunTarget) Setup(ctx context.Context, bundlePath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setup(ctx, bundlePath); err != nil {
		return err
	}
	hybrid, err := isCgroup2Mount(c.unified)
	if err != nil {
		return fmt.Errorf("crun: %w", err)
	}
	if !hybrid {
		return nil
	}
	unshare, err := requireCommand("unshare", "util-linux")
	if err != nil {
		return err
	}
	nsenter, err := requireCommand("nsenter", "util-linux")
	if err != nil {
		return err
	}
	if err := c.startHelper(ctx, unshare); err != nil {
		return err
	}
	c.prefix = []string{nsenter, "--target", strconv.Itoa(c.helper.Process.Pid), "--mount"}
	return nil
}

// helperReady is what the helper prints once the cgroup2 mount is gone
// from its namespace.
const helperReady = "ready"

// startHelper starts the process that holds the private mount namespace
// and waits until it has unmounted the cgroup2 hierarchy there. It is not
// tied to ctx: it must live until Teardown.
func (c *crunTarget) startHelper(ctx context.Context, unshare string) error {
	script := fmt.Sprintf("umount %s || exit 1; echo %s; exec sleep infinity", c.unified, helperReady)
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = cliEnv()
	// Its own process group, so that a Ctrl-C meant for the benchmark does
	// not end the namespace before the teardown has used it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("crun: mount namespace helper: %w", err)
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("crun: mount namespace helper: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.helper, c.helperDone = cmd, done

	// Read until the ready line, or until the helper fails (its output ends
	// and says why).
	lines := make(chan string)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-quit:
				return
			}
			if sc.Text() == helperReady {
				return
			}
		}
	}()
	var said []string
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return fmt.Errorf("crun: mount namespace helper failed: %s", strings.Join(said, "; "))
			}
			if line == helperReady {
				return nil
			}
			said = append(said, line)
		case <-ctx.Done():
			return fmt.Errorf("crun: mount namespace helper: %w", ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("crun: mount namespace helper not ready after 10s: %s", strings.Join(said, "; "))
		}
	}
}

// Teardown deletes every container (inside the helper's namespace, where
// crun works), removes the cgroups and the work dir, then ends the helper.
func (c *crunTarget) Teardown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.teardown(ctx)
	if c.helper != nil {
		// The helper is our child: kill it by its pid and reap it. Its
		// mount namespace goes with it.
		_ = c.helper.Process.Kill()
		select {
		case <-c.helperDone:
		case <-time.After(10 * time.Second):
			err = errors.Join(err, fmt.Errorf("crun: mount namespace helper %d did not exit", c.helper.Process.Pid))
		}
		c.helper, c.helperDone, c.prefix = nil, nil, nil
	}
	return err
}

// isCgroup2Mount reports whether path is a cgroup2 mount point in this
// process's mount namespace.
func isCgroup2Mount(path string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return hasCgroup2Mount(data, path), nil
}

// hasCgroup2Mount reports whether the mountinfo data has a cgroup2 mount
// at path.
func hasCgroup2Mount(data []byte, path string) bool {
	for _, line := range strings.Split(string(data), "\n") {
		// 36 35 0:30 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 && unescapeMountinfo(f[4]) == path && g[0] == "cgroup2" {
			return true
		}
	}
	return false
}
