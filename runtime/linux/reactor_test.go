package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"

	"github.com/troupe-run/troupe/runtime/containerlog"
)

func newTestReactor(t *testing.T) *reactor {
	t.Helper()
	rx, err := newReactor()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.close)
	return rx
}

// TestReactorProcessExits starts many children that exit at about the same
// time and checks that every exit is reported once, with its own status.
func TestReactorProcessExits(t *testing.T) {
	rx := newTestReactor(t)
	w := newWaiters()
	const n = 40
	procs := make([]*process, n)
	var after atomic.Int32
	for i := range procs {
		cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("sleep 0.%d; exit %d", i%3, i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := func() (*os.ProcessState, error) {
			err := cmd.Wait()
			return cmd.ProcessState, err
		}
		procs[i] = waitChild(rx, w, cmd.Process.Pid, runtime.ProcessSpec{}, cmd.Process.Signal, wait, func() { after.Add(1) })
	}
	for i, p := range procs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := p.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		if st.Code != i {
			t.Errorf("process %d exited %d, want %d", i, st.Code, i)
		}
		if w.has(p.pid) {
			t.Errorf("process %d is still in the waiters after its reap", i)
		}
	}
	if got := after.Load(); got != n {
		t.Errorf("afterExit ran %d times, want %d", got, n)
	}
	if l := rx.len(); l != 0 {
		t.Errorf("%d descriptors still watched after every exit", l)
	}
}

// TestLogPumpCopies checks that everything written into a pipe reaches the
// log, however large, and that the pump lets go once every writer is gone.
func TestLogPumpCopies(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		fresh  bool
		before string // already in the log
	}{
		{"empty", 0, true, "2026-12-02T01:00:00Z stdout F old\n"},
		{"small", 100, true, "2026-12-02T01:00:00Z stdout F old\n"},
		{"larger than the pipe and the buffer", 1 << 20, true, ""},
		{"appended", 5000, false, "2026-12-02T01:00:00Z stdout F kept\n"},
	}
	rx := newTestReactor(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
				t.Fatal(err)
			}
			outR, outW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			errR, errW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			p, err := startLogPump(rx, outR, errR, path, containerlog.Limits{}, tc.fresh, &logDrops{})
			if err != nil {
				outW.Close()
				errW.Close()
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("0123456789abcde\n"), tc.size/16+1)[:tc.size]
			go func() {
				outW.Write(data)
				outW.Close()
			}()
			go func() {
				errW.Write([]byte("on stderr\n"))
				errW.Close()
			}()
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the pump did not see the end of the pipes")
			}
			var out, errOut []byte
			if err := containerlog.Read(path, containerlog.ReadOptions{}, func(l containerlog.Line) error {
				b := append([]byte(nil), l.Content...)
				if !l.Partial {
					b = append(b, '\n')
				}
				if l.Stream == containerlog.Stderr {
					errOut = append(errOut, b...)
				} else {
					out = append(out, b...)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			want := string(data)
			if !tc.fresh {
				want = "kept\n" + want
			}
			if string(out) != want {
				t.Errorf("stdout in the log has %d bytes, want %d", len(out), len(want))
			}
			if string(errOut) != "on stderr\n" {
				t.Errorf("stderr in the log: %q", errOut)
			}
		})
	}
	if l := rx.len(); l != 0 {
		t.Errorf("%d descriptors still watched after every pipe's end", l)
	}
}

// TestReactorRemoval checks both ways out of the reactor: a handler that
// returns false and remove; either way release runs once and the handler
// never again.
func TestReactorRemoval(t *testing.T) {
	tests := []struct {
		name string
		// remove takes the registration out after the first event, or
		// leaves it to the handler.
		remove bool
	}{
		{"handler returns false", false},
		{"remove", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rx := newTestReactor(t)
			efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			var calls, releases atomic.Int32
			called := make(chan struct{}, 10)
			id, err := rx.add(efd, unix.EPOLLIN, func(uint32) bool {
				var b [8]byte
				unix.Read(efd, b[:])
				calls.Add(1)
				called <- struct{}{}
				return tc.remove
			}, func() {
				releases.Add(1)
				unix.Close(efd)
			})
			if err != nil {
				t.Fatal(err)
			}
			signal := func() {
				if _, err := unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
					t.Fatal(err)
				}
			}
			signal()
			select {
			case <-called:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler was not called")
			}
			if tc.remove {
				rx.remove(id)
			} else {
				testutil.Eventually(t, "release", func() bool { return releases.Load() == 1 })
			}
			if got := releases.Load(); got != 1 {
				t.Fatalf("release ran %d times, want 1", got)
			}
			// A ready descriptor that likely reuses the number must not
			// reach the old handler, however often the loop goes round.
			efd2, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(efd2)
			loopGoesRound(t, rx, 3)
			rx.remove(id) // again: nothing happens
			if calls.Load() != 1 || releases.Load() != 1 || rx.len() != 0 {
				t.Errorf("after removal: %d calls, %d releases, %d watched; want 1, 1, 0", calls.Load(), releases.Load(), rx.len())
			}
		})
	}
}

// loopGoesRound waits until the reactor's loop has collected and served
// events n times more: a descriptor that stays ready, added for that, is
// served once per round (and then released).
func loopGoesRound(t *testing.T, rx *reactor, n int32) {
	t.Helper()
	fd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	var rounds atomic.Int32
	released := make(chan struct{})
	if _, err := rx.add(fd, unix.EPOLLIN, func(uint32) bool { return rounds.Add(1) < n },
		func() { unix.Close(fd); close(released) }); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatalf("the reactor's loop went round %d times in 10s, want %d", rounds.Load(), n)
	}
}

// TestReactorCloseReleases checks that closing the reactor ends its
// goroutine and releases what is still registered.
func TestReactorCloseReleases(t *testing.T) {
	rx, err := newReactor()
	if err != nil {
		t.Fatal(err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	if _, err := rx.add(efd, unix.EPOLLIN, func(uint32) bool { return true }, func() {
		released = true
		unix.Close(efd)
	}); err != nil {
		t.Fatal(err)
	}
	rx.close()
	select {
	case <-rx.done:
	default:
		t.Error("the loop still runs after close")
	}
	if !released {
		t.Error("close did not release a registration")
	}
	if _, err := rx.add(0, unix.EPOLLIN, func(uint32) bool { return true }, nil); err == nil {
		t.Error("add after close succeeded")
	}
	rx.close() // twice is fine
}

// TestInitOutputBeforeExit checks that an init's last output is in its log
// by the time its exit is seen, more of it than a pipe holds.
func TestInitOutputBeforeExit(t *testing.T) {
	e := newEnv(t)
	const lines = 5000
	c := e.start("chatty", busybox.Options{Args: []string{"sh", "-c",
		"i=0; while [ $i -lt " + strconv.Itoa(lines) + " ]; do echo line $i; i=$((i+1)); done"}})
	if st := wait(t, c.Init()); st.Code != 0 {
		t.Fatalf("init exit = %+v", st)
	}
	got := strings.Split(strings.TrimSuffix(readLog(t, c), "\n"), "\n")
	if len(got) != lines || got[lines-1] != fmt.Sprintf("line %d", lines-1) {
		t.Errorf("log has %d lines ending %q, want %d", len(got), got[len(got)-1], lines)
	}
}

// cpuTime is the CPU this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threads is the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads in /proc/self/status")
	return 0
}

// TestDensity checks what running containers cost the runtime while they
// run: no OS thread and no goroutine each (a blocking wait, poll or read
// per container would hold one of each), and no CPU while nothing happens,
// also with exited inits around whose descriptors stay ready for ever.
func TestDensity(t *testing.T) {
	e := newEnv(t)
	const n = 20
	// The first start makes the reactor and the runtime's threads for
	// libcontainer's blocking work; those stay, whatever the count.
	warm := e.start("warm", busybox.Options{})
	if err := warm.OnOOM(func() {}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c := e.start(fmt.Sprintf("exited%d", i), busybox.Options{Args: []string{"sh", "-c", "echo bye"}})
		wait(t, c.Init())
	}
	goruntime.GC()
	threads0, goroutines0 := threads(t), goruntime.NumGoroutine()
	for i := range n {
		c := e.start(fmt.Sprintf("d%02d", i), busybox.Options{})
		if err := c.OnOOM(func() {}); err != nil {
			t.Fatal(err)
		}
	}
	// The goroutines of the starts themselves end; one per container
	// would stay.
	testutil.Eventually(t, "the starts' own goroutines to end", func() bool {
		return goruntime.NumGoroutine()-goroutines0 <= n/4
	})
	threads1, goroutines1 := threads(t), goruntime.NumGoroutine()
	t.Logf("%d running containers: threads %d -> %d, goroutines %d -> %d", n, threads0, threads1, goroutines0, goroutines1)
	// Slack for threads the Go runtime makes for the starts' own blocking
	// syscalls, which it keeps idle; one per container would be n.
	if grown := threads1 - threads0; grown > n/2 {
		t.Errorf("threads grew by %d with %d running containers, want at most %d", grown, n, n/2)
	}
	if grown := goroutines1 - goroutines0; grown > n/4 {
		t.Errorf("goroutines grew by %d with %d running containers, want at most %d", grown, n, n/4)
	}
	// Idle: the loop parks. A spinning one would burn a whole second here.
	// (A measuring window, not a wait for something to happen.)
	cpu0 := cpuTime(t)
	time.Sleep(time.Second)
	if used := cpuTime(t) - cpu0; used > 200*time.Millisecond {
		t.Errorf("the idle runtime used %v of CPU in 1s with %d containers", used, n+1)
	}
}

// TestOOMWatchEndsOnDelete checks the end of an OOM watch: the kernel
// signals the eventfd when the cgroup goes, which must end the watch, not
// report an OOM kill, and give the descriptor back; OnOOM then fails.
func TestOOMWatchEndsOnDelete(t *testing.T) {
	e := newEnv(t)
	c, err := e.rt.Start(context.Background(), "oomgone", runtime.StartOptions{BundlePath: e.bundle("oomgone", busybox.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ooms := make(chan struct{}, 4)
	if err := c.OnOOM(func() { ooms <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	cc := c.(*container)
	cc.oomMu.Lock()
	w := cc.oom
	cc.oomMu.Unlock()
	if w == nil {
		t.Fatal("OnOOM made no OOM watch")
	}
	if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	// The watch's descriptor is released when it ends.
	testutil.Eventually(t, "every descriptor to be released", func() bool { return e.rt.rx.len() == 0 })
	if !w.isEnded() {
		t.Error("the OOM watch did not end when the cgroup went")
	}
	select {
	case <-ooms:
		t.Error("an OOM kill reported for a deleted container")
	default:
	}
	if err := c.OnOOM(func() { t.Error("an OOM callback of a deleted container called") }); !errors.Is(err, errclass.NotFound) {
		t.Errorf("OnOOM after delete: %v, want not found", err)
	}
}
