package linux

import (
	"context"
	"fmt"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// exitSeen is what an OnExit callback saw when it was called.
type exitSeen struct {
	status runtime.ExitStatus
	done   bool   // Done was closed
	log    string // the container's log, for an init
}

// watchExit registers an OnExit callback on p that reports what it saw,
// reading logPath when it is not empty, and counts its calls.
func watchExit(p runtime.Process, logPath string, calls *atomic.Int32) <-chan exitSeen {
	seen := make(chan exitSeen, 2)
	p.OnExit(func(st runtime.ExitStatus) {
		calls.Add(1)
		s := exitSeen{status: st}
		select {
		case <-p.Done():
			s.done = true
		default:
		}
		if logPath != "" {
			_ = containerlog.Read(logPath, containerlog.ReadOptions{}, func(l containerlog.Line) error {
				s.log += string(l.Content) + "\n"
				return nil
			})
		}
		seen <- s
	})
	return seen
}

// TestOnExit checks the exit callback of each kind of process: it is called
// once, after Done is closed, with the status Wait returns, an init's output
// already in its log; also when registered after the exit, and for a
// re-adopted init, whose status is unknown (-1).
func TestOnExit(t *testing.T) {
	tests := []struct {
		name string
		// process starts what is watched and returns it with its log
		// (empty when the callback need not read it); end, if not nil,
		// makes it exit once the callback is registered.
		process func(e *env) (p runtime.Process, log string, end func())
		// late registers the callback only after the process has exited.
		late   bool
		code   int
		signal syscall.Signal
		log    string
	}{
		{name: "init exits", process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("init", busybox.Options{Args: []string{"sh", "-c", "sleep 0.2; echo last words; exit 3"}})
			return c.Init(), c.LogPath(), nil
		}, code: 3, log: "last words\n"},
		{name: "init killed", process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("killed", busybox.Options{})
			return c.Init(), "", func() {
				if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
					e.t.Fatal(err)
				}
			}
		}, code: 128 + 9, signal: syscall.SIGKILL},
		{name: "init with output", process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("chatty", busybox.Options{Args: []string{"sh", "-c", "sleep 0.2; i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo last words"}})
			return c.Init(), c.LogPath(), nil
		}, code: 0, log: "last words\n"},
		{name: "exec'd process", process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("exec", busybox.Options{})
			p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"sh", "-c", "sleep 0.2; exit 5"}})
			if err != nil {
				e.t.Fatal(err)
			}
			return p, "", nil
		}, code: 5},
		{name: "already exited", late: true, process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("gone", busybox.Options{Args: []string{"sh", "-c", "echo bye; exit 4"}})
			return c.Init(), c.LogPath(), nil
		}, code: 4, log: "bye\n"},
		{name: "re-adopted init", process: func(e *env) (runtime.Process, string, func()) {
			e.start("adopted", busybox.Options{})
			loaded := e.load("adopted")
			return loaded.Init(), "", func() {
				if err := loaded.Signal(loaded.Init().Pid(), syscall.SIGKILL); err != nil {
					e.t.Fatal(err)
				}
			}
		}, code: -1},
		{name: "re-adopted after its init exited", late: true, process: func(e *env) (runtime.Process, string, func()) {
			c := e.start("adoptedgone", busybox.Options{Args: []string{"true"}})
			wait(e.t, c.Init())
			return e.load("adoptedgone").Init(), "", nil
		}, code: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p, logPath, end := tc.process(e)
			var calls atomic.Int32
			if tc.late {
				wait(t, p)
			}
			seen := watchExit(p, logPath, &calls)
			if end != nil {
				end()
			}
			var s exitSeen
			select {
			case s = <-seen:
			case <-time.After(20 * time.Second):
				t.Fatalf("OnExit's callback was not called within 20s")
			}
			if !s.done {
				t.Error("the callback ran before Done was closed")
			}
			if s.status.Code != tc.code || s.status.Signal != tc.signal {
				t.Errorf("callback status = %+v, want code %d signal %v", s.status, tc.code, tc.signal)
			}
			if st := wait(t, p); st != s.status {
				t.Errorf("Wait = %+v, callback %+v", st, s.status)
			}
			if tc.log != "" && !strings.HasSuffix(s.log, tc.log) {
				t.Errorf("log when the callback ran ends %q, want %q", tail(s.log, 40), tc.log)
			}
			// A second callback, registered now, is called too.
			again := watchExit(p, "", &calls)
			select {
			case s2 := <-again:
				if s2.status != s.status {
					t.Errorf("a late callback got %+v, the first %+v", s2.status, s.status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a callback registered after the exit was not called")
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("%d calls for two callbacks", n)
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// load is what a restarted daemon sees of container id: a second runtime
// on the same state dir loads it.
func (e *env) load(id string) runtime.Container {
	e.t.Helper()
	rt2, err := New(Options{StateDir: filepath.Join(e.dir, "state"), CgroupParent: e.parent})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rt2.Close() })
	c, err := rt2.Load(context.Background(), id)
	if err != nil {
		e.t.Fatalf("load %s: %v", id, err)
	}
	return c
}

// TestOnExitCostsNoGoroutines checks that a caller watching running
// containers through OnExit and OnOOM holds no goroutine per container,
// where one blocked in Wait and one blocked reading OOM events each would,
// and that every exit callback comes once the containers are killed (and
// no OOM callback, there being no OOM kill).
func TestOnExitCostsNoGoroutines(t *testing.T) {
	e := newEnv(t)
	const n = 50
	// The first start makes the reactor; it stays, whatever the count.
	e.start("warm", busybox.Options{})
	goroutines0 := goruntime.NumGoroutine()
	containers := make([]runtime.Container, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("cb%02d", i)
			c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: e.bundle(id, busybox.Options{})})
			if err != nil {
				errs <- err
				return
			}
			containers[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for _, c := range containers {
		if c != nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
				defer cancel()
				_ = c.Delete(ctx, true)
			})
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	exits := make(chan runtime.ExitStatus, n)
	var ooms atomic.Int32
	for _, c := range containers {
		c.Init().OnExit(func(st runtime.ExitStatus) { exits <- st })
		if err := c.OnOOM(func() { ooms.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// The starts' own goroutines end; one per container would stay.
	testutil.Eventually(t, fmt.Sprintf("at most %d more goroutines than before %d running containers", n/10, n), func() bool {
		return goruntime.NumGoroutine()-goroutines0 <= n/10
	})
	t.Logf("%d running containers with exit and OOM callbacks: goroutines %d -> %d", n, goroutines0, goruntime.NumGoroutine())
	for _, c := range containers {
		if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(20 * time.Second)
	for i := range n {
		select {
		case st := <-exits:
			if st.Signal != syscall.SIGKILL {
				t.Errorf("exit %+v, want killed", st)
			}
		case <-deadline:
			t.Fatalf("%d of %d exit callbacks within 20s", i, n)
		}
	}
	if k := ooms.Load(); k != 0 {
		t.Errorf("%d OOM callbacks without an OOM kill", k)
	}
}

// TestOOMKilledInitOrder checks, on inits that the kernel's OOM killer
// kills, that the kill is reported (OnOOM) before the exit (OnExit, Done),
// however the reactor's wake-up and the reap race: several times over.
func TestOOMKilledInitOrder(t *testing.T) {
	e := newEnv(t)
	// The init allocates without bound once told to, so that the
	// callbacks are registered before the kill.
	o := busybox.Options{MemoryLimit: 32 << 20, Args: []string{"sh", "-c",
		`while [ ! -e /dev/shm/go ]; do sleep 0.02; done; a=0123456789; while true; do a=$a$a; done`}}
	for i := range 5 {
		t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) {
			c := e.start(fmt.Sprintf("oominit%d", i), o)
			init := c.Init()
			events := make(chan string, 8)
			if err := c.OnOOM(func() {
				select {
				case <-init.Done():
					events <- "oom after Done"
				default:
					events <- "oom"
				}
			}); err != nil {
				t.Fatal(err)
			}
			init.OnExit(func(st runtime.ExitStatus) { events <- "exit " + st.String() })
			if st, out := e.exec(c, "touch", "/dev/shm/go"); st.Code != 0 {
				t.Fatalf("touch /dev/shm/go: %v: %s", st, out)
			}
			want := []string{"oom", "exit killed by killed"}
			for j, w := range want {
				got := testutil.Receive(t, fmt.Sprintf("event %d (%s)", j, w), events)
				if got != w {
					t.Fatalf("event %d = %q, want %q: %q", j, got, w, want)
				}
			}
			// One kill, one report: the rechecks after the wake-up find
			// nothing new.
			time.Sleep(oomRechecks[len(oomRechecks)-2] + 50*time.Millisecond)
			select {
			case got := <-events:
				t.Errorf("%q after the exit", got)
			default:
			}
		})
	}
}
