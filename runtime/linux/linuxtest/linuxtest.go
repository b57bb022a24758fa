// Package linuxtest holds what the tests of several packages need to start
// real containers with package linux: a shared busybox rootfs, cleaning up
// what a failed test left (containers, cgroup directories), CRIU from make
// criu on the PATH, and skipping (or, under make test, failing) a test that
// needs CRIU when none is installed.
package linuxtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
			if err := c.Delete(ctx, true); err != nil {
				t.Errorf("cleanup: delete %s: %v", id, err)
			}
		}
	}
}

// RemoveCgroup removes the cgroup directory parent, and those below it, in
// every hierarchy, deepest first, retrying briefly while exiting processes
// leave.
func RemoveCgroup(parent string) {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", parent))
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			for try := 0; try < 50; try++ {
				if err := os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
