package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupLockDir holds one lock file per cgroup parent in use by a daemon.
// A cgroup parent is not a directory the daemon could lock itself (it is one
// directory per hierarchy, made and removed with the containers), so its
// lock lives here, named after it; /run is a tmpfs, emptied at boot as
// cgroups are.
const cgroupLockDir = "/run/troupe-cgroup-locks"

// daemonLocks are what a daemon holds so that no other daemon on the same
// machine uses its directories or cgroups: each an flock on an open file,
// which the kernel drops when the daemon dies, kill -9 included, so a stale
// lock cannot outlive its holder.
type daemonLocks struct {
	held []heldLock
}

// heldLock is one lock taken. A removable one's file goes with the last
// daemon that holds it, so that the cgroup lock directory does not collect
// a file for every cgroup parent ever used.
type heldLock struct {
	f         *os.File
	path      string
	removable bool
}

// lockDaemon takes the locks of a daemon with these directories and cgroup
// parent. Another live daemon holding any of them is an error that names it.
//
// The cgroup parent's ancestors are locked shared and the parent itself
// exclusively, so that daemons with nested parents (/troupe and
// /troupe/web) also refuse each other: the first's container "web" and the
// second's containers would share cgroups.
func lockDaemon(root, state, cgroupParent string) (*daemonLocks, error) {
	l := &daemonLocks{}
	fail := func(err error) (*daemonLocks, error) {
		l.release()
		return nil, err
	}
	dirs := []string{filepath.Clean(state)}
	if r := filepath.Clean(root); r != dirs[0] {
		dirs = append(dirs, r)
	}
	for _, d := range dirs {
		what := "state dir"
		if d != filepath.Clean(state) {
			what = "root dir"
		}
		if err := l.lock(filepath.Join(d, "daemon.lock"), unix.LOCK_EX, false, what+" "+d); err != nil {
			return fail(err)
		}
	}
	if err := os.MkdirAll(cgroupLockDir, 0o700); err != nil {
		return fail(fmt.Errorf("lock cgroup parent: %w", err))
	}
	if !path.IsAbs(cgroupParent) {
		return fail(fmt.Errorf("--cgroup-parent %q must be an absolute cgroup path", cgroupParent))
	}
	parent := path.Clean(cgroupParent)
	for p := path.Dir(parent); ; p = path.Dir(p) {
		if err := l.lock(cgroupLockFile(p), unix.LOCK_SH, true, "cgroup "+p+" (the parent of --cgroup-parent "+parent+")"); err != nil {
			return fail(err)
		}
		if p == "/" {
			break
		}
	}
	if parent != "/" {
		if err := l.lock(cgroupLockFile(parent), unix.LOCK_EX, true, "cgroup parent "+parent+" (or one under it)"); err != nil {
			return fail(err)
		}
	}
	return l, nil
}

// cgroupLockFile is the lock file of cgroup path p: its path escaped into
// one file name, so that different paths never share one.
func cgroupLockFile(p string) string {
	return filepath.Join(cgroupLockDir, url.PathEscape(p)+".lock")
}

// lock takes an flock of kind on file, without waiting.
func (l *daemonLocks) lock(file string, kind int, removable bool, what string) error {
	var f *os.File
	for {
		// O_NOFOLLOW: the daemon runs as root, and a symlink put in place
		// of the lock file would make it create or truncate another file.
		var err error
		f, err = os.OpenFile(file, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("lock %s: %w", what, err)
		}
		if err := unix.Flock(int(f.Fd()), kind|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return fmt.Errorf("%s is in use by another troupe daemon%s; give this one its own --root, --state and --cgroup-parent", what, holder(file))
			}
			return fmt.Errorf("lock %s: %w", what, err)
		}
		// The last holder of a removable lock removes its file; one opened
		// just before that is a lock nobody else would see. Locked is what
		// the path still names.
		var opened, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &opened) == nil && unix.Stat(file, &named) == nil &&
			opened.Dev == named.Dev && opened.Ino == named.Ino {
			break
		}
		f.Close()
	}
	// Best effort, the lock is what counts: an exclusive holder records its
	// pid; a shared one clears the pid of an exclusive holder that is gone.
	if err := f.Truncate(0); err == nil && kind == unix.LOCK_EX {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	l.held = append(l.held, heldLock{f: f, path: file, removable: removable})
	return nil
}

// holder names the pid recorded in a lock file, if any.
func holder(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

// release drops every lock, the last taken first. A removable lock's file
// is removed when no other daemon holds it (it can be made exclusive).
func (l *daemonLocks) release() {
	for i := len(l.held) - 1; i >= 0; i-- {
		h := l.held[i]
		if h.removable && unix.Flock(int(h.f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(h.path)
		}
		h.f.Close()
	}
	l.held = nil
}
