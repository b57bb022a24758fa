package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/criu"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Reconcile makes the state directory and the cgroup parent say only what is
// true, for a daemon starting after one that died: a container stays only if
// it is what its state says, that is, its init runs, or it ran and has
// exited. A container whose start did not finish (no libcontainer state, or
// an init still waiting to exec the bundle's process) is destroyed with its
// cgroups in every hierarchy, its state directory and its log; cgroups and
// logs that belong to no container go too. Call it before listing or
// loading containers, after RemovePrepared, while nothing else uses the
// runtime: it takes everything under its state directory and cgroup parent
// as its own.
func (r *Runtime) Reconcile(ctx context.Context) (runtime.Reconciled, error) {
	var rep runtime.Reconciled
	var errs []error
	entries, err := os.ReadDir(r.stateRoot)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	// The names a kept container's cgroups and log go by: its id, or for a
	// claimed prepared container the prepared name.
	kept := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		id := e.Name()
		name, alias, ok := r.stateName(e)
		if !ok {
			continue
		}
		keep, err := r.reconcileOne(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %q: %w", id, err))
		}
		if keep {
			kept[name] = true
			continue
		}
		if alias != "" {
			_ = os.Remove(alias)
		}
		rep.Destroyed = append(rep.Destroyed, id)
	}
	cgroups, err := r.removeStrayCgroups(kept)
	rep.Cgroups = cgroups
	errs = append(errs, err)
	logs, err := r.removeStrayLogs(kept)
	rep.Logs = logs
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	return rep, nil
}

// stateName is the state directory name of entry e of the state root: e's
// own for a container, its target for a claimed prepared container's
// symlink (alias is then the symlink). Prepared containers nobody claimed
// are RemovePrepared's, and other names are not containers.
func (r *Runtime) stateName(e os.DirEntry) (name, alias string, ok bool) {
	if e.Type()&os.ModeSymlink != 0 {
		link := filepath.Join(r.stateRoot, e.Name())
		target, err := os.Readlink(link)
		if err != nil || !strings.HasPrefix(target, preparedPrefix) || strings.Contains(target, "/") {
			return "", "", false
		}
		if _, err := os.Stat(link); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(link) // its container is gone
			return "", "", false
		}
		return target, link, true
	}
	if !e.IsDir() || runtime.ValidID("container id", e.Name()) != nil {
		return "", "", false
	}
	return e.Name(), "", true
}

// reconcileOne keeps container name when it is what its state says, and
// destroys it otherwise.
func (r *Runtime) reconcileOne(name string) (keep bool, err error) {
	logPath := filepath.Join(r.logRoot, name+".log")
	if m, err := readMeta(r.stateRoot, name); err == nil && m.LogPath != "" {
		logPath = m.LogPath
	}
	lc, err := libcontainer.Load(r.stateRoot, name)
	if err != nil {
		// Created but never started: libcontainer writes its state only
		// once the init runs. What the start made goes.
		return false, errors.Join(
			r.killCgroup(name),
			criu.RemoveAll(filepath.Join(r.stateRoot, name)),
			containerlog.Remove(logPath))
	}
	status, err := lc.Status()
	if err != nil {
		return true, fmt.Errorf("status: %w", err)
	}
	if status != libcontainer.Created {
		return true, nil
	}
	// An init still waiting to exec the bundle's process: the start that
	// made it did not finish, and nobody was told it did. Destroy kills it
	// and removes its cgroups and state.
	return false, errors.Join(lc.Destroy(), r.killCgroup(name), containerlog.Remove(logPath))
}

// removeStrayCgroups removes the cgroups below the cgroup parent, in every
// hierarchy, whose name is not kept.
func (r *Runtime) removeStrayCgroups(kept map[string]bool) ([]string, error) {
	var removed []string
	var errs []error
	seen := map[string]bool{}
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", r.cgroupParent, "*"))
	for _, d := range dirs {
		name := filepath.Base(d)
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() || kept[name] || seen[name] {
			continue
		}
		seen[name] = true
		if err := r.killCgroup(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path.Join(r.cgroupParent, name))
	}
	slices.Sort(removed)
	return removed, errors.Join(errs...)
}

// removeStrayLogs removes the logs that belong to no kept container.
func (r *Runtime) removeStrayLogs(kept map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(r.logRoot)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || kept[logOwner(e.Name())] {
			continue
		}
		if err := os.Remove(filepath.Join(r.logRoot, e.Name())); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// logOwner is the name of the container a file of the log directory
// belongs to: <name>.log, and its older files <name>.log.<n>.
func logOwner(file string) string {
	if i := strings.LastIndex(file, ".log"); i > 0 {
		rest := file[i+len(".log"):]
		if rest == "" || (rest[0] == '.' && strings.Trim(rest[1:], "0123456789") == "" && len(rest) > 1) {
			return file[:i]
		}
	}
	return ""
}

// cgroupKillTimeout bounds the wait for the processes of a cgroup to die.
const cgroupKillTimeout = 10 * time.Second

// killCgroup kills every process in cgroup <parent>/<name> and below, in
// every hierarchy, and removes its directories, deepest first.
func (r *Runtime) killCgroup(name string) error {
	roots, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", r.cgroupParent, name))
	if len(roots) == 0 {
		return nil
	}
	var dirs []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	deadline := time.Now().Add(cgroupKillTimeout)
	for {
		pids := map[int]bool{}
		for _, d := range dirs {
			for _, pid := range readPidsFile(filepath.Join(d, "cgroup.procs")) {
				pids[pid] = true
			}
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: %d processes did not die within %s", path.Join(r.cgroupParent, name), len(pids), cgroupKillTimeout)
		}
		for pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		// A frozen process dies only once thawed.
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
				_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Deepest first; an exiting process can hold a directory a moment.
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, d := range dirs {
		var err error
		for try := 0; try < 50; try++ {
			if err = os.Remove(d); err == nil || os.IsNotExist(err) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readPidsFile reads a cgroup.procs file.
func readPidsFile(p string) []int {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
