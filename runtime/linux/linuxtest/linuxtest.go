// Package linuxtest holds what the tests of several packages need to start
// real containers with package linux: a guard process that removes what a
// test binary leaves when it dies (Guarded), a shared busybox rootfs,
// cleaning up what a failed test left (containers, cgroup directories),
// bounding calls that may hang, CRIU from make criu on the PATH, and
// skipping (or, under make test, failing) a test that needs CRIU when none
// is installed.
package linuxtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// CriuPrefix is where make criu installs CRIU ($CRIU_PREFIX overrides it).
func CriuPrefix() string {
	if p := os.Getenv("CRIU_PREFIX"); p != "" {
		return p
	}
	return "/opt/troupe/criu"
}

// UseCriu puts make criu's CRIU first on this process's PATH, where
// libcontainer looks for criu. Call it from TestMain.
func UseCriu() {
	os.Setenv("PATH", filepath.Join(CriuPrefix(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// RequireRoot skips a test that needs root (one that starts real
// containers, makes cgroups or mounts) when the test binary does not run as
// root, saying why: the package's other tests still run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts real containers")
	}
}

// RequireCriu skips a test that needs CRIU when none is installed, unless
// TROUPE_REQUIRE_CRIU is set (make test sets it, after make criu): there a
// missing CRIU is a failure, not a skip.
func RequireCriu(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("criu"); err == nil {
		return
	}
	if os.Getenv("TROUPE_REQUIRE_CRIU") != "" {
		t.Fatal("no criu on PATH or in " + CriuPrefix() + ": run make criu")
	}
	t.Skip("no criu on PATH or in " + CriuPrefix() + " (make criu installs one)")
}

// SharedRootfs makes a temporary directory (named after prefix) holding a
// busybox rootfs that the tests' bundles share read-only. The directory is
// 0755: containers run as other users than its owner and must reach it. The
// caller removes dir.
func SharedRootfs(prefix string) (dir, rootfs string, err error) {
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", err
	}
	if err = os.Chmod(dir, 0o755); err == nil {
		rootfs, err = busybox.Rootfs(filepath.Join(dir, "rootfs"))
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, rootfs, nil
}

// DeleteAll deletes, killing them if need be, the containers rt still has:
// what a failed test left behind.
func DeleteAll(t testing.TB, rt runtime.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, _ := rt.List(ctx)
	for _, id := range ids {
		if c, err := rt.Load(ctx, id); err == nil {
			// Delete gives up waiting at ctx's deadline, but not while
			// another call (a hung checkpoint) holds the container.
			if err := Within(35*time.Second, func() error { return c.Delete(ctx, true) }); err != nil {
				t.Errorf("cleanup: delete %s: %v", id, err)
			}
		}
	}
}

// Within returns f's error, or an error saying that f is still blocked
// after d: a call that may block in the kernel or in a tool (CRIU) fails
// its test instead of holding the test binary until go test's -timeout.
// f goes on in its goroutine; what it holds is left to the test's cleanup
// and, once the binary ends, to the guard.
func Within(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("still blocked after %v", d)
	}
}

// RemoveCgroup removes the cgroup directory parent, and those below it, in
// every hierarchy, deepest first, retrying briefly while exiting processes
// leave.
func RemoveCgroup(parent string) {
	dirs := cgroupDirs(parent)
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50; try++ {
			if err := os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// KillCgroup kills every process in the cgroup parent and below, in every
// hierarchy (thawing frozen ones, which die only once thawed), and waits up
// to 10 s for them to go. It returns how many it killed, and an error
// naming those still there.
func KillCgroup(parent string) (int, error) {
	killed := map[int]bool{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		dirs := cgroupDirs(parent)
		var live []int
		for _, dir := range dirs {
			data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				// A zombie waits for its new parent to reap it: gone.
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(live, pid) {
					if _, ok := StartTime(pid); ok {
						live = append(live, pid)
					}
				}
			}
		}
		if len(live) == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("processes %v still in cgroup %s 10s after SIGKILL", live, parent)
		}
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
		}
		// After the kill: a thawed process dies before it runs again.
		for _, dir := range dirs {
			_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
			_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0o644)
		}
	}
}

// cgroupDirs returns the directories of the cgroup parent and below it in
// every hierarchy, each parent before its children. A parent that is not
// an absolute path below the root has none: it is never the root itself.
func cgroupDirs(parent string) []string {
	parent = filepath.Clean(parent)
	if !filepath.IsAbs(parent) || parent == "/" {
		return nil
	}
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	var dirs []string
	seen := map[string]bool{}
	for _, root := range roots {
		// Co-mounted controllers (cpu,cpuacct) are one hierarchy under
		// several names.
		real, err := filepath.EvalSymlinks(root)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}
