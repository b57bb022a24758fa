package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/procstat"
)

// ErrStuck says that a call was still running after its CRIU was killed: it
// is left to finish in the background, and whatever it holds (libcontainer's
// lock of the container) stays held until then.
var ErrStuck = errors.New("still running after CRIU was killed")

// stuckGrace is how long a call may take to return once its CRIU processes
// are dead; libcontainer notices at once (its socket to CRIU closes).
const stuckGrace = 5 * time.Second

// Bound runs fn, which starts CRIU (libcontainer's Checkpoint or Restore),
// and kills what fn started if ctx ends first. Its error is then ctx's
// cause, wrapped with how long CRIU had; fn's own error is dropped, since it
// only says that CRIU died. Bound returns once fn has returned, or, if fn
// does not return within a few seconds of the kill, with ErrStuck.
func Bound(ctx context.Context, fn func() error) error {
	start := time.Now()
	type thread struct {
		tid    int
		before map[int]bool
		since  uint64 // boot time in clock ticks when fn began
	}
	ready := make(chan thread, 1)
	done := make(chan error, 1)
	go func() {
		// Every process fn starts is a child of this thread, and the thread
		// runs nothing else meanwhile: its new children are fn's. Children
		// it forked before, for other goroutines, are not.
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		tid := unix.Gettid()
		ready <- thread{tid: tid, before: threadChildren(tid), since: bootTicks()}
		done <- fn()
	}()
	t := <-ready
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// A child can also come to the thread when another thread of this
	// process exits and its children are handed over; those started
	// before fn and are spared.
	var ours []int
	for pid := range threadChildren(t.tid) {
		if started, ok := startTicks(pid); !t.before[pid] && ok && started+1 >= t.since {
			ours = append(ours, pid)
		}
	}
	KillTree(ours...)
	timedOut := fmt.Errorf("CRIU did not finish within %s and was killed: %w", time.Since(start).Round(time.Second), context.Cause(ctx))
	select {
	case <-done:
		return timedOut
	case <-time.After(stuckGrace):
		return fmt.Errorf("%w; the call is %w", timedOut, ErrStuck)
	}
}

// threadChildren returns the pids of the children of thread tid of this
// process.
func threadChildren(tid int) map[int]bool {
	out := map[int]bool{}
	for _, pid := range readPids(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), tid)) {
		out[pid] = true
	}
	return out
}

// ticksPerSecond is the unit of start times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const ticksPerSecond = 100

// bootTicks is the time since boot in /proc's clock ticks.
func bootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*ticksPerSecond + uint64(ts.Nsec)/(1e9/ticksPerSecond)
}

// startTicks is when process pid started, in clock ticks since boot.
func startTicks(pid int) (uint64, bool) {
	st, err := procstat.Read(pid)
	return st.StartTicks, err == nil
}

// KillTree kills the processes pids and all their descendants. Each is
// stopped before its children are listed, so none can fork one that
// escapes; then all get SIGKILL. The caller reaps its own children.
func KillTree(pids ...int) {
	self := os.Getpid()
	seen := map[int]bool{}
	queue := append([]int(nil), pids...)
	// A fork already under way when SIGSTOP arrives can still finish: walk
	// again until a pass finds nothing new.
	for pass := 0; pass < 10 && len(queue) > 0; pass++ {
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			if seen[pid] || pid <= 1 || pid == self {
				continue
			}
			seen[pid] = true
			_ = unix.Kill(pid, unix.SIGSTOP)
			queue = append(queue, processChildren(pid)...)
		}
		for pid := range seen {
			for _, c := range processChildren(pid) {
				if !seen[c] {
					queue = append(queue, c)
				}
			}
		}
	}
	for pid := range seen {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// processChildren returns the children of every thread of process pid.
func processChildren(pid int) []int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		out = append(out, readPids(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))...)
	}
	return out
}

// readPids reads a space-separated list of pids.
func readPids(path string) []int {
	data, err := os.ReadFile(path)
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

// Unmount detaches every mount below dir, deepest first. A CRIU killed
// mid-run leaves its cgroup yard (.criu.cgyard.*, a mount of each cgroup
// hierarchy) mounted in its images directory, which then cannot be removed.
func Unmount(dir string) error {
	// This thread's mounts, not the main thread's: libcontainer can leave
	// that one in a container's mount namespace.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	prefix := filepath.Clean(dir) + "/"
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		// The fifth field is the mount point, with spaces and the like
		// escaped in octal; a yard under a plain path has none.
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAll removes dir and what is below it, as os.RemoveAll does, but
// first unmounts what a killed CRIU left there, and never goes on into
// another file system: os.RemoveAll would walk into a cgroup yard left
// mounted and remove every empty cgroup of the machine.
func RemoveAll(dir string) error {
	uerr := Unmount(dir)
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return errors.Join(uerr, removeOnDevice(dir, root.Dev))
}

// removeOnDevice removes path, a directory's contents first, staying on
// file system dev.
func removeOnDevice(path string, dev uint64) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Dev != dev {
		return fmt.Errorf("remove %s: another file system is mounted there", path)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeOnDevice(filepath.Join(path, e.Name()), dev); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
