package actors

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestRealConcurrentStarts(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	const n = 200
	b := e.bundle("sleep", "sleep", "300")
	var wg sync.WaitGroup
	errs := make([]error, n)
	var maxQueued time.Duration
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.sup.Start(ctx, fmt.Sprintf("c%03d", i), b)
			errs[i] = err
			if err == nil {
				if r.Container.State.Status != api.Running || len(r.Container.Processes) != 1 {
					errs[i] = fmt.Errorf("start answered %+v", r.Container)
				}
				mu.Lock()
				maxQueued = max(maxQueued, r.Queued)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("c%03d: %v", i, err)
		}
	}
	st := e.sup.State()
	if len(st.Containers) != n {
		t.Fatalf("snapshot lists %d containers, want %d", len(st.Containers), n)
	}
	for _, c := range st.Containers {
		if c.State.Status != api.Running {
			t.Errorf("%s is %s", c.ID, c.State.Status)
		}
	}
	// With 200 requests and DefaultMaxStarts slots, most of them queued.
	if maxQueued == 0 {
		t.Errorf("no start waited for admission")
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.sup.Delete(ctx, fmt.Sprintf("c%03d", i), true)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("delete c%03d: %v", i, err)
		}
	}
	if n := len(e.sup.State().Containers); n != 0 {
		t.Errorf("%d containers listed after deleting all", n)
	}
	if ids, _ := e.rt.List(ctx); len(ids) != 0 {
		t.Errorf("the runtime still has %v", ids)
	}
}

func TestRealKillInitEvents(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	sub := e.sup.Events().Subscribe(events.Filter{Container: "victim"})
	defer sub.Close()
	r, err := e.sup.Start(ctx, "victim", e.bundle("victim", "sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	initPid := r.Container.Processes[0].Pid
	p, err := e.sup.Exec(ctx, "victim", runtime.ProcessSpec{Args: []string{"sleep", "301"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := status(e.sup.State(), "victim"); got != api.Running {
		t.Fatalf("snapshot status = %q", got)
	}
	if err := e.sup.Kill(ctx, "victim", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the container to stop", func() bool { return status(e.sup.State(), "victim") == api.Stopped })
	c, err := e.sup.Get(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if c.State.ExitStatus == nil || *c.State.ExitStatus != 137 || len(c.Processes) != 0 {
		t.Errorf("after kill: state %+v, processes %v; want stopped, exit 137, none", c.State, c.Processes)
	}
	if snap, _ := e.sup.State().Get("victim"); snap.State.ExitStatus == nil || *snap.State.ExitStatus != 137 {
		t.Errorf("the snapshot disagrees with the actor: %+v", snap.State)
	}
	// Start, exec, then the exec'd process and the init end, in any order
	// the kernel reaps them; ids strictly increase.
	var got []api.Event
	for len(got) < 4 {
		got = append(got, testutil.Receive(t, "an event", sub.C()))
	}
	types := func(es []api.Event) []api.EventType {
		var ts []api.EventType
		for _, e := range es {
			ts = append(ts, e.Type)
		}
		return ts
	}
	if got[0].Type != api.EventStart || got[0].Pid != initPid || got[1].Type != api.EventExec || got[1].Pid != p.Pid {
		t.Errorf("events = %v, want start (pid %d) then exec (pid %d)", types(got), initPid, p.Pid)
	}
	rest := types(got[2:])
	if !slices.Contains(rest, api.EventExit) || !slices.Contains(rest, api.EventProcessExit) {
		t.Errorf("events = %v, want exit and process-exit after them", types(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Errorf("event ids not increasing: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
	for _, ev := range got[2:] {
		if ev.Type == api.EventExit && (ev.ExitStatus == nil || *ev.ExitStatus != 137) {
			t.Errorf("exit event %+v, want status 137", ev)
		}
	}
	// Stopped containers refuse what only a live one can do.
	if _, err := e.sup.Exec(ctx, "victim", runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("exec into a stopped container: %v", err)
	}
	if _, err := e.sup.Pause(ctx, "victim"); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("pause of a stopped container: %v", err)
	}
	if err := e.sup.Delete(ctx, "victim", false); err != nil {
		t.Fatal(err)
	}
	if ev := testutil.Receive(t, "an event", sub.C()); ev.Type != api.EventDelete {
		t.Errorf("last event = %v, want delete", ev.Type)
	}
	if _, err := e.sup.Get(ctx, "victim"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("get after delete: %v, want not found", err)
	}
	// The id is free again at once.
	if _, err := e.sup.Start(ctx, "victim", e.bundle("victim", "sleep", "300")); err != nil {
		t.Errorf("restart under the same id: %v", err)
	}
}

func TestRealPauseResume(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "freeze", e.bundle("freeze", "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // pausing a paused container is a no-op success
		c, err := e.sup.Pause(ctx, "freeze")
		if err != nil || c.State.Status != api.Paused {
			t.Fatalf("pause: %v, %v", c.State.Status, err)
		}
	}
	if _, err := e.sup.Exec(ctx, "freeze", runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("exec into a paused container: %v", err)
	}
	c, err := e.sup.Resume(ctx, "freeze")
	if err != nil || c.State.Status != api.Running {
		t.Fatalf("resume: %v, %v", c.State.Status, err)
	}
	if got := status(e.sup.State(), "freeze"); got != api.Running {
		t.Errorf("snapshot = %s", got)
	}
}

func TestRealStormSnapshotAgrees(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("s%02d", i)
			// Some inits exit by themselves, some run on.
			args := []string{"sleep", "300"}
			if i%4 == 0 {
				args = []string{"sh", "-c", "sleep 0.2; exit 3"}
			}
			if _, err := e.sup.Start(ctx, id, e.bundle(id, args...)); err != nil {
				t.Errorf("start %s: %v", id, err)
				return
			}
			for j := range 3 {
				p, err := e.sup.Exec(ctx, id, runtime.ProcessSpec{Args: []string{"sleep", fmt.Sprint(100 + j)}})
				if err != nil {
					// An init that exits by itself may do so mid-exec.
					if i%4 != 0 || !errors.Is(err, errclass.FailedPrecondition) {
						t.Errorf("exec in %s: %v", id, err)
					}
					continue
				}
				if j == 1 {
					// The process may be gone already, or its whole
					// container (an init that exits by itself).
					if err := e.sup.Signal(ctx, id, p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, errclass.NotFound) &&
						!(i%4 == 0 && errors.Is(err, errclass.FailedPrecondition)) {
						t.Errorf("signal in %s: %v", id, err)
					}
				}
			}
			if i%5 == 1 {
				_ = e.sup.Kill(ctx, id, syscall.SIGKILL)
			}
		}()
	}
	wg.Wait()
	wantStopped := func(id string) bool {
		var i int
		fmt.Sscanf(id, "s%02d", &i)
		return i%4 == 0 || i%5 == 1
	}
	// Once every exit has been reported, the books and the actors agree.
	testutil.Eventually(t, "the books to agree with the actors", func() bool {
		for _, snap := range e.sup.State().Containers {
			if (snap.State.Status == api.Stopped) != wantStopped(snap.ID) {
				return false
			}
			c, err := e.sup.Get(ctx, snap.ID)
			if err != nil || c.State.Status != snap.State.Status || !samePids(c.Processes, snap.Processes) {
				return false
			}
			// And with the kernel: each listed process is alive.
			for _, p := range c.Processes {
				if syscall.Kill(p.Pid, 0) != nil {
					return false
				}
			}
		}
		return len(e.sup.State().Containers) == n
	})
	for _, snap := range e.sup.State().Containers {
		if !wantStopped(snap.ID) && len(snap.Processes) != 3 { // init and two sleeps; one was killed
			t.Errorf("%s lists %d processes, want 3", snap.ID, len(snap.Processes))
		}
	}
}

func samePids(a, b []api.Process) bool {
	return slices.EqualFunc(a, b, func(x, y api.Process) bool { return x.Pid == y.Pid })
}

func TestRealPanicLeavesOthersIntact(t *testing.T) {
	e := newRealEnvOn(t, Config{}, func(rt *linux.Runtime) runtime.Runtime { return crashingRuntime{rt} })
	ctx := testContext(t)
	for _, id := range []string{"calm", "faulty"} {
		if _, err := e.sup.Start(ctx, id, e.bundle(id, "sleep", "300")); err != nil {
			t.Fatal(err)
		}
	}
	before := e.sup.State()
	crash(e.system.Root, e.sup, "faulty")
	// The restarted actor took over its record: it still knows its init.
	testutil.Eventually(t, "the faulty actor to answer again", func() bool {
		c, err := e.sup.Get(ctx, "faulty")
		return err == nil && c.State.Status == api.Running && len(c.Processes) == 1
	})
	if after := e.sup.State(); !slices.Equal(after.Containers, before.Containers) {
		t.Errorf("the books changed after a panic")
	}
	if _, err := e.sup.Exec(ctx, "calm", runtime.ProcessSpec{Args: []string{"true"}}); err != nil {
		t.Errorf("the other container: %v", err)
	}
	// Its waiters still report to it: an exit after the panic is seen.
	if err := e.sup.Kill(ctx, "faulty", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the restarted actor to see its init exit", func() bool {
		return status(e.sup.State(), "faulty") == api.Stopped
	})
}

func TestRealSlowSubscriberGetsGap(t *testing.T) {
	log := events.New(events.Options{SubscriberQueue: 2})
	e := newRealEnv(t, Config{Events: log})
	ctx := testContext(t)
	slow := log.Subscribe(events.Filter{})
	defer slow.Close()
	if _, err := e.sup.Start(ctx, "chatty", e.bundle("chatty", "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := e.sup.Exec(ctx, "chatty", runtime.ProcessSpec{Args: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	// start, then 4 exec and 4 process-exit: 9 events for a queue of 2.
	testutil.Eventually(t, "every event to be published", func() bool { return log.LastID() >= 9 })
	var received, missed uint64
	for received+missed < 9 {
		ev := testutil.Receive(t, "an event", slow.C())
		if ev.Type == api.EventGap {
			missed += ev.Missed
			continue
		}
		received++
	}
	if missed == 0 || received+missed != 9 {
		t.Errorf("the slow subscriber received %d events and was told of %d missed; want a gap, adding up to 9", received, missed)
	}
}

func TestRealCheckpointCloneAndExit(t *testing.T) {
	linuxtest.RequireCriu(t)
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	sub := e.sup.Events().Subscribe(events.Filter{})
	defer sub.Close()
	counter := []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; usleep 50000; done"}
	r, err := e.sup.Start(ctx, "orig", e.bundle("orig", counter...))
	if err != nil {
		t.Fatal(err)
	}
	count := func(pid int) int {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/count", pid))
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	origPid := r.Container.Processes[0].Pid
	testutil.Eventually(t, "the counter to pass 10", func() bool { return count(origPid) > 10 })

	cp, err := e.sup.Checkpoint(ctx, "orig", "cp1", runtime.CheckpointOptions{})
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if cp.Name != "cp1" || cp.Container != "orig" || cp.Created.IsZero() {
		t.Errorf("checkpoint = %+v", cp)
	}
	if _, err := e.sup.Checkpoint(ctx, "orig", "cp1", runtime.CheckpointOptions{}); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("a second checkpoint with the same name: %v", err)
	}
	if got := status(e.sup.State(), "orig"); got != api.Running {
		t.Fatalf("after a checkpoint without exit the original is %s", got)
	}
	list, err := e.sup.Checkpoints(ctx, "orig")
	if err != nil || len(list) != 1 || list[0].Name != "cp1" {
		t.Fatalf("checkpoints = %v, %v", list, err)
	}

	// A clone under a new id while the original runs: it counts on from
	// where the original was, not from 0.
	at := count(origPid)
	clone, err := e.sup.Restore(ctx, "clone", "", "orig/cp1")
	if err != nil {
		t.Fatalf("restore clone: %v", err)
	}
	clonePid := clone.Container.Processes[0].Pid
	if n := count(clonePid); n < 10 || n > at+40 {
		t.Errorf("the clone counts from %d; the original was at %d at the dump", n, at)
	}
	testutil.Eventually(t, "the clone to count on", func() bool { return count(clonePid) > at })
	if got := status(e.sup.State(), "orig"); got != api.Running {
		t.Errorf("the original is %s while its clone runs", got)
	}

	// A checkpoint with exit stops the container.
	if _, err := e.sup.Checkpoint(ctx, "clone", "last", runtime.CheckpointOptions{Exit: true}); err != nil {
		t.Fatalf("checkpoint with exit: %v", err)
	}
	testutil.Eventually(t, "the clone to stop after its exit checkpoint", func() bool { return status(e.sup.State(), "clone") == api.Stopped })

	var types []api.EventType
	for len(types) < 64 {
		ev := testutil.Receive(t, "an event", sub.C())
		types = append(types, ev.Type)
		if ev.Type == api.EventExit && ev.Container == "clone" {
			break
		}
	}
	for _, want := range []api.EventType{api.EventCheckpoint, api.EventRestore} {
		if !slices.Contains(types, want) {
			t.Errorf("events %v lack %s", types, want)
		}
	}

	if err := e.sup.DeleteCheckpoint(ctx, "orig", "cp1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.sup.Checkpoints(ctx, "orig"); len(list) != 0 {
		t.Errorf("checkpoints after delete: %v", list)
	}
	if _, err := e.sup.Restore(ctx, "again", "", "orig/cp1"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("restore from a deleted checkpoint: %v, want not found", err)
	}
	if _, err := e.sup.Restore(ctx, "bad", "", "../x"); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("restore from a bad reference: %v, want invalid argument", err)
	}
	// The checkpoint of the stopped clone outlives it.
	if err := e.sup.Delete(ctx, "clone", false); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.sup.Checkpoints(ctx, "clone"); len(list) != 1 || !list[0].Exit {
		t.Errorf("the clone's checkpoint did not outlive it: %v", list)
	}
}

// TestRealOOMKilled: an init the OOM killer ends is reported OOMKilled; one
// killed otherwise is not.
func TestRealOOMKilled(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	hog := e.env.BundleWith(t, "hog", busybox.Options{MemoryLimit: 64 << 20,
		Args: []string{"sh", "-c", "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived"}})
	if _, err := e.sup.Start(ctx, "hog", hog); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.Start(ctx, "killed", e.bundle("killed", "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	if err := e.sup.Kill(ctx, "killed", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"hog": true, "killed": false} {
		testutil.Eventually(t, id+" to stop", func() bool { return status(e.sup.State(), id) == api.Stopped })
		c, _ := e.sup.State().Get(id)
		if c.State.OOMKilled != want || c.State.ExitStatus == nil || *c.State.ExitStatus != 137 {
			t.Errorf("%s: %+v, want exit 137 and oomKilled %v", id, c.State, want)
		}
	}
}
