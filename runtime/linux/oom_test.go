package linux

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
)

// TestInitExitDrainsOOM checks the wiring of the ordering on its own, where
// a real OOM kill cannot show it: the reactor's wake-up and its rechecks
// usually win the race with the reap anyway. Here a kill is counted and
// nothing wakes the watch, as when the wake-up is still on its way: the
// init's exit must report it, before Done is closed and OnExit runs.
func TestInitExitDrainsOOM(t *testing.T) {
	rx := newTestReactor(t)
	var kills atomic.Uint64
	var gone atomic.Bool
	w, err := newOOMWatch(func() (uint64, error) {
		if gone.Load() {
			return 0, os.ErrNotExist
		}
		return kills.Load(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &container{oom: w}
	events := make(chan string, 8)
	var victim atomic.Pointer[process]
	w.onOOM(func() {
		select {
		case <-victim.Load().Done():
			events <- "oom after Done"
		default:
			events <- "oom"
		}
	})
	cmd := exec.Command("/bin/sh", "-c", "read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait := func() (*os.ProcessState, error) {
		err := cmd.Wait()
		return cmd.ProcessState, err
	}
	p := waitChild(rx, newWaiters(), cmd.Process.Pid, runtime.ProcessSpec{}, cmd.Process.Signal, wait, c.afterInitExit(nil))
	victim.Store(p)
	p.OnExit(func(runtime.ExitStatus) { events <- "exit" })
	kills.Add(1) // counted: the kernel counts before it kills
	stdin.Close()
	for _, want := range []string{"oom", "exit"} {
		if got := testutil.Receive(t, want, events); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A kill is reported once, and none once the cgroup is gone.
	w.report()
	kills.Add(1)
	gone.Store(true)
	w.report()
	select {
	case got := <-events:
		t.Errorf("%q after the exit", got)
	default:
	}
}

// TestOOMWatchCounts checks what a watch reports: the growth of the count
// since the last report, to every callback, nothing once ended, not even to
// a callback registered after the end.
func TestOOMWatchCounts(t *testing.T) {
	var n atomic.Uint64
	n.Store(3) // kills before the watch are not reported
	w, err := newOOMWatch(func() (uint64, error) { return n.Load(), nil })
	if err != nil {
		t.Fatal(err)
	}
	var a, b atomic.Int32
	w.onOOM(func() { a.Add(1) })
	w.onOOM(func() { b.Add(1) })
	w.report()
	if a.Load() != 0 || b.Load() != 0 {
		t.Fatal("a report with no new kill")
	}
	n.Add(2)
	w.report()
	w.report()
	if a.Load() != 2 || b.Load() != 2 {
		t.Errorf("callbacks called %d and %d times for 2 kills", a.Load(), b.Load())
	}
	w.end()
	var late atomic.Int32
	w.onOOM(func() { late.Add(1) })
	n.Add(1)
	w.report()
	if a.Load() != 2 || b.Load() != 2 {
		t.Error("a callback called after the end")
	}
	if late.Load() != 0 {
		t.Error("a callback registered after the end called")
	}
	w.mu.Lock()
	kept := len(w.fns)
	w.mu.Unlock()
	if kept != 0 {
		t.Errorf("%d callbacks kept after the end, want none", kept)
	}
	if _, err := newOOMWatch(func() (uint64, error) { return 0, os.ErrNotExist }); err == nil {
		t.Error("a watch made on a missing cgroup")
	} else if !errors.Is(errCgroupGone(err), errclass.NotFound) {
		t.Errorf("missing cgroup: %v, want not found", errCgroupGone(err))
	}
}

// TestOOMWatchV2Files checks the cgroup v2 watch's mechanics on plain
// files standing in for a cgroup's (this machine is cgroup v1): a change of
// memory.events reports the kills it counts, and the watch ends once
// cgroup.events says the cgroup has no process left.
func TestOOMWatchV2Files(t *testing.T) {
	rx := newTestReactor(t)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
	write("cgroup.events", "populated 1\nfrozen 0\n")
	w, err := watchOOMv2(rx, dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan struct{}, 8)
	w.onOOM(func() { calls <- struct{}{} })
	write("memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
	write("memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\noom_group_kill 0\n")
	for i := range 2 {
		testutil.Receive(t, fmt.Sprintf("OOM kill %d", i+1), calls)
	}
	write("cgroup.events", "populated 0\nfrozen 0\n")
	testutil.Eventually(t, "the watch to end once the cgroup is empty", func() bool { return w.isEnded() && rx.len() == 0 })
	if len(calls) != 0 {
		t.Errorf("%d calls more than the 2 kills", len(calls))
	}
	// Made for an empty cgroup: ended from the start, nothing watched.
	if w, err := watchOOMv2(rx, dir); err != nil || !w.isEnded() || rx.len() != 0 {
		t.Errorf("watch of an empty cgroup: ended %v, %d watched, %v", err == nil && w.isEnded(), rx.len(), err)
	}
	if _, err := watchOOMv2(rx, filepath.Join(dir, "gone")); !errors.Is(err, errclass.NotFound) {
		t.Errorf("watch of a removed cgroup: %v, want not found", err)
	}
}
