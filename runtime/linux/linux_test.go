package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/containerlog"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// testDir holds what all tests share: a read-only busybox rootfs. It is
// 0755 so that a user-namespaced container's root can reach it.
var testDir string

func TestMain(m *testing.M) {
	// This test binary is also the container init.
	Init()
	if os.Getenv(leaderExitEnv) != "" {
		exitLeader()
	}
	os.Exit(linuxtest.Guarded(func() int { return run(m) }))
}

// run runs the tests, with a shared rootfs when they can start containers;
// when not root, those that would skip themselves (newEnv) and the rest run.
func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, _, err := linuxtest.SharedRootfs("troupe-linux-test-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer linuxtest.RemoveAll(dir)
	testDir = dir
	linuxtest.UseCriu()
	return m.Run()
}

// env is one test's runtime, on its own state dir and cgroup parent so
// tests and a running daemon never collide.
type env struct {
	t      *testing.T
	rt     *Runtime
	dir    string
	parent string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	linuxtest.RequireRoot(t)
	dir, err := os.MkdirTemp(testDir, "case-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parent := "/troupe-test-" + filepath.Base(dir)
	linuxtest.TrackCgroup(parent)
	rt, err := New(Options{StateDir: filepath.Join(dir, "state"), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()                     // after the containers' own cleanups
		linuxtest.RemoveCgroup(parent) // empty once its containers are deleted
		if err := linuxtest.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return &env{t: t, rt: rt, dir: dir, parent: parent}
}

// bundle writes a bundle on the shared rootfs (or a private one when the
// options ask for a writable root) and returns its path.
func (e *env) bundle(name string, o busybox.Options) string {
	e.t.Helper()
	if !o.ReadOnly && o.Rootfs == "" {
		o.Rootfs = filepath.Join(testDir, "rootfs")
	}
	p, err := busybox.Bundle(filepath.Join(e.dir, "bundles", name), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// start starts a container from o and deletes it (forcefully) when the test
// ends, checking that nothing is left behind.
func (e *env) start(id string, o busybox.Options) runtime.Container {
	e.t.Helper()
	c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: e.bundle(id, o)})
	if err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil && !errors.Is(err, errclass.NotFound) {
			e.t.Errorf("delete %s: %v", id, err)
		}
	})
	return c
}

// exec runs args in c with stdout and stderr captured in a file, waits for
// it, and returns its exit status and output.
func (e *env) exec(c runtime.Container, args ...string) (runtime.ExitStatus, string) {
	e.t.Helper()
	out, err := os.CreateTemp(e.dir, "exec-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: args, Stdout: out, Stderr: out})
	if err != nil {
		e.t.Fatalf("exec %v: %v", args, err)
	}
	st := wait(e.t, p)
	data, err := os.ReadFile(out.Name())
	if err != nil {
		e.t.Fatal(err)
	}
	return st, string(data)
}

// cleanupTimeout bounds a cleanup's wait for processes to die: one that
// does not (stuck in the kernel) fails the test instead of hanging it.
const cleanupTimeout = 30 * time.Second

func wait(t *testing.T, p runtime.Process) runtime.ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("pid %d did not exit: %v", p.Pid(), err)
	}
	return st
}

// cgroupDirs returns the directories of cgroup path rel that exist in any
// hierarchy.
func cgroupDirs(t *testing.T, rel string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", rel))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

// assertGone checks that container id left no trace: no cgroup directory in
// any hierarchy, no state directory, no log file.
func (e *env) assertGone(id, logPath string) {
	e.t.Helper()
	if dirs := cgroupDirs(e.t, filepath.Join(e.parent, id)); len(dirs) > 0 {
		e.t.Errorf("cgroup dirs left behind: %v", dirs)
	}
	if _, err := os.Stat(filepath.Join(e.rt.stateRoot, id)); !os.IsNotExist(err) {
		e.t.Errorf("state dir left behind: %v", err)
	}
	if _, err := os.Stat(logPath); !os.IsNotExist(err) {
		e.t.Errorf("log file left behind: %v", err)
	}
}

// readLog returns what c's init wrote, stdout and stderr, as it wrote it.
func readLog(t *testing.T, c runtime.Container) string {
	t.Helper()
	var out []byte
	err := containerlog.Read(c.LogPath(), containerlog.ReadOptions{}, func(l containerlog.Line) error {
		out = append(out, l.Content...)
		if !l.Partial {
			out = append(out, '\n')
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestLifecycleExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		kill   bool // SIGKILL the init from the host
		code   int
		signal syscall.Signal
		log    string
	}{
		{"exit zero", []string{"sh", "-c", "echo hello from init"}, false, 0, 0, "hello from init\n"},
		{"exit code", []string{"sh", "-c", "echo to stderr >&2; exit 3"}, false, 3, 0, "to stderr\n"},
		// A pid 1 ignores signals sent from inside its namespace, even
		// SIGKILL; from the host they work.
		{"killed", []string{"sleep", "300"}, true, 128 + 9, syscall.SIGKILL, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := "life"
			c := e.start(id, busybox.Options{Args: tc.args})
			if tc.kill {
				if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			st := wait(t, c.Init())
			if st.Code != tc.code || st.Signal != tc.signal {
				t.Errorf("exit = %+v, want code %d signal %v", st, tc.code, tc.signal)
			}
			if got := readLog(t, c); got != tc.log {
				t.Errorf("log = %q, want %q", got, tc.log)
			}
			if s, err := c.Status(); err != nil || s != runtime.Stopped {
				t.Errorf("status = %v, %v; want stopped", s, err)
			}
			if pids, err := c.Processes(); err != nil || len(pids) != 0 {
				t.Errorf("processes of a stopped container = %v, %v", pids, err)
			}
			if err := c.Delete(context.Background(), false); err != nil {
				t.Fatalf("delete: %v", err)
			}
			e.assertGone(id, c.LogPath())
		})
	}
}

func TestStartRunningAndDuplicate(t *testing.T) {
	e := newEnv(t)
	c := e.start("dup", busybox.Options{})
	if s, err := c.Status(); err != nil || s != runtime.Running {
		t.Fatalf("status = %v, %v; want running (%s)", s, err, whyNotRunning(t, c))
	}
	pids, err := c.Processes()
	if err != nil || len(pids) != 1 || pids[0] != c.Init().Pid() {
		t.Fatalf("processes = %v, %v; want [%d]", pids, err, c.Init().Pid())
	}
	// Start returns once the init is committed to exec the bundle's
	// command; the exec itself may still be a moment away.
	testutil.Eventually(t, "the init to be the bundle's sleep", func() bool {
		return strings.HasPrefix(readProc(t, c.Init().Pid(), "cmdline"), "sleep 3600")
	})
	_, err = e.rt.Start(context.Background(), "dup", runtime.StartOptions{BundlePath: e.bundle("dup2", busybox.Options{})})
	if !errors.Is(err, errclass.AlreadyExists) {
		t.Fatalf("second start with the same id: %v, want already exists", err)
	}
	if s, _ := c.Status(); s != runtime.Running {
		t.Fatalf("the first container is %s after a refused duplicate", s)
	}
	if err := c.Delete(context.Background(), false); !errors.Is(err, errclass.FailedPrecondition) {
		t.Fatalf("delete of a running container without force: %v, want failed precondition", err)
	}
}

// whyNotRunning tells what is known of a container that should be running
// and is not: its init's exit, what the kernel says of that pid, and the
// log, since a bare "stopped" cannot be told from a misreading.
func whyNotRunning(t *testing.T, c runtime.Container) string {
	t.Helper()
	pid := c.Init().Pid()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	exit := "has not exited within 2s"
	if st, err := c.Init().Wait(ctx); err == nil {
		exit = fmt.Sprintf("exited: %+v", st)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		stat = []byte(err.Error())
	}
	return fmt.Sprintf("init %d %s; /proc/%d/stat: %s; log: %q", pid, exit, pid, bytes.TrimSpace(stat), readLog(t, c))
}

func readProc(t *testing.T, pid int, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
}

func TestExecExitCodes(t *testing.T) {
	e := newEnv(t)
	c := e.start("exec", busybox.Options{})
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"success", []string{"echo", "hi"}, 0, "hi\n"},
		{"own exit code", []string{"sh", "-c", "exit 7"}, 7, ""},
		{"sees the container", []string{"hostname"}, 0, "busybox\n"},
		{"pid namespace", []string{"sh", "-c", "echo $$"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.exec(c, tc.args...)
			if st.Code != tc.code {
				t.Errorf("exit = %v, want %d", st, tc.code)
			}
			if tc.out != "" && out != tc.out {
				t.Errorf("output = %q, want %q", out, tc.out)
			}
		})
	}
	// Inside its pid namespace an exec'd process is not pid 1 and not a
	// host pid.
	_, out := e.exec(c, "sh", "-c", "echo $$")
	if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n <= 1 || n > 100 {
		t.Errorf("exec'd pid inside the container = %q, want a small pid > 1", out)
	}
	if _, err := c.Exec(context.Background(), runtime.ProcessSpec{}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("exec without args: %v, want invalid argument", err)
	}
	if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"/no/such/binary"}}); err == nil {
		t.Errorf("exec of a missing binary succeeded")
	}
}

func TestExecUserAndCwd(t *testing.T) {
	e := newEnv(t)
	c := e.start("user", busybox.Options{})
	out, err := os.CreateTemp(e.dir, "out-")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p, err := c.Exec(context.Background(), runtime.ProcessSpec{
		Args:   []string{"sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO"},
		Env:    []string{"PATH=/bin", "FOO=bar"},
		Cwd:    "/tmp",
		User:   runtime.User{UID: 1000, GID: 1001, AdditionalGids: []int{2000}},
		Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := wait(t, p); st.Code != 0 {
		t.Fatalf("exit = %v", st)
	}
	data, _ := os.ReadFile(out.Name())
	want := "1000\n1001\n1001 2000\n/tmp\nbar\n"
	if string(data) != want {
		t.Errorf("output = %q, want %q", data, want)
	}
}

func TestSignalOneExecProcess(t *testing.T) {
	e := newEnv(t)
	c := e.start("signal", busybox.Options{})
	a, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"sleep", "301"}})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := c.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 3 || pids[0] != c.Init().Pid() || !slices.Contains(pids, a.Pid()) || !slices.Contains(pids, b.Pid()) {
		t.Fatalf("processes = %v; want init %d first, then %d and %d", pids, c.Init().Pid(), a.Pid(), b.Pid())
	}
	if err := c.Signal(a.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := wait(t, a)
	if st.Signal != syscall.SIGTERM || st.Code != 128+int(syscall.SIGTERM) {
		t.Errorf("signalled process exit = %+v, want SIGTERM", st)
	}
	select {
	case <-b.Done():
		t.Fatal("the other exec'd process exited too")
	case <-time.After(100 * time.Millisecond):
	}
	if s, _ := c.Status(); s != runtime.Running {
		t.Errorf("container is %s after signalling one exec'd process", s)
	}
	testutil.Eventually(t, "the signalled process to leave the list", func() bool {
		pids, _ := c.Processes()
		return !slices.Contains(pids, a.Pid()) && slices.Contains(pids, b.Pid())
	})
	for _, pid := range []int{a.Pid(), 1, os.Getpid()} {
		if err := c.Signal(pid, syscall.SIGTERM); !errors.Is(err, errclass.NotFound) {
			t.Errorf("signal to pid %d (not a live process of the container): %v, want not found", pid, err)
		}
	}
}

func TestSignalChildOfInit(t *testing.T) {
	e := newEnv(t)
	// The init forks a child the runtime does not know about.
	c := e.start("child", busybox.Options{Args: []string{"sh", "-c", "sleep 300 & wait $!"}})
	var child int
	testutil.Eventually(t, "the init's child", func() bool {
		pids, _ := c.Processes()
		if len(pids) == 2 {
			child = pids[1]
		}
		return child != 0
	})
	if err := c.Signal(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The shell's wait returns and the init exits with 128+9.
	if st := wait(t, c.Init()); st.Code != 128+9 {
		t.Errorf("init exit = %v, want 137 (its child was killed)", st)
	}
}

func TestKillInitWithExecProcesses(t *testing.T) {
	e := newEnv(t)
	c := e.start("killinit", busybox.Options{})
	var execs []runtime.Process
	for range 3 {
		p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"sleep", "300"}})
		if err != nil {
			t.Fatal(err)
		}
		execs = append(execs, p)
	}
	if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c.Init()); st.Signal != syscall.SIGKILL {
		t.Errorf("init exit = %v, want SIGKILL", st)
	}
	for _, p := range execs {
		if st := wait(t, p); st.Signal != syscall.SIGKILL {
			t.Errorf("exec'd pid %d exit = %v, want SIGKILL from the namespace's end", p.Pid(), st)
		}
	}
	if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("exec into a stopped container: %v, want failed precondition", err)
	}
	if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); !errors.Is(err, errclass.NotFound) {
		t.Errorf("signal to the dead init: %v, want not found", err)
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	c := e.start("pause", busybox.Options{Args: []string{"sh", "-c", "while true; do echo tick; usleep 20000; done"}})
	size := func() int64 {
		fi, err := os.Stat(c.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	testutil.Eventually(t, "the counter to start", func() bool { return size() > 0 })
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Status(); s != runtime.Paused {
		t.Fatalf("status after pause = %s", s)
	}
	frozen := size()
	// A window to watch nothing happen in (the counter ticks every 20 ms),
	// not a wait for an event.
	time.Sleep(300 * time.Millisecond)
	if got := size(); got != frozen {
		t.Fatalf("the counter moved while paused: %d -> %d bytes", frozen, got)
	}
	if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("exec into a paused container: %v, want failed precondition", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Status(); s != runtime.Running {
		t.Fatalf("status after resume = %s", s)
	}
	testutil.Eventually(t, "the counter to move again", func() bool { return size() > frozen })
	if err := c.Resume(); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("resume of a running container: %v, want failed precondition", err)
	}
	// A paused container can be deleted with force.
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatalf("force delete of a paused container: %v", err)
	}
	e.assertGone("pause", c.LogPath())
}

func TestSeccompDeniesMkdir(t *testing.T) {
	e := newEnv(t)
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{
			Names:  []string{"mkdir", "mkdirat"},
			Action: specs.ActErrno,
		}},
	}
	c := e.start("seccomp", busybox.Options{Seccomp: profile, Args: []string{"sh", "-c",
		"mkdir /tmp/d 2>&1; echo mkdir=$?; touch /tmp/f && echo touch=ok"}})
	if st := wait(t, c.Init()); st.Code != 0 {
		t.Fatalf("init exit = %v", st)
	}
	log := readLog(t, c)
	for _, want := range []string{"Operation not permitted", "mkdir=1", "touch=ok"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}
}

func TestUserNamespace(t *testing.T) {
	e := newEnv(t)
	mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	c := e.start("userns", busybox.Options{UIDMappings: mapping, GIDMappings: mapping, NoCgroupMount: true})
	status := readProc(t, c.Init().Pid(), "status")
	for _, want := range []string{"Uid:\t100000\t100000\t100000\t100000", "Gid:\t100000\t100000\t100000\t100000"} {
		if !strings.Contains(status, want) {
			t.Errorf("the init's /proc status lacks %q:\n%s", want, status)
		}
	}
	st, out := e.exec(c, "id", "-u")
	if st.Code != 0 || out != "0\n" {
		t.Errorf("id -u inside = %q (%v), want root", out, st)
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			e := newEnv(t)
			o := busybox.Options{MemoryLimit: 32 << 20}
			var c runtime.Container
			if warm {
				// A prepared container's notification is registered ahead.
				var err error
				if c, err = e.prepare(e.bundle("oom", o)).Claim(context.Background(), "oom", runtime.ClaimOptions{}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
			} else {
				c = e.start("oom", o)
			}
			// The callbacks share one watch, for a prepared container
			// the one made ahead.
			events := make(chan string, 8)
			for _, name := range []string{"oom 1", "oom 2"} {
				if err := c.OnOOM(func() { events <- name }); err != nil {
					t.Fatal(err)
				}
			}
			st, _ := e.exec(c, "sh", "-c", "a=0123456789; while true; do a=$a$a; done")
			if st.Signal != syscall.SIGKILL {
				t.Errorf("memory hog exit = %v, want SIGKILL by the OOM killer", st)
			}
			// Each reported, in the order registered, before the hog's
			// exit, which e.exec waited for.
			for _, want := range []string{"oom 1", "oom 2"} {
				select {
				case got := <-events:
					if got != want {
						t.Fatalf("OOM callback %q called, want %q", got, want)
					}
				default:
					t.Fatalf("OOM callback %q was not called before the hog's exit was reported", want)
				}
			}
			stats, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if stats.MemoryLimit != 32<<20 {
				t.Errorf("memory limit = %d, want %d", stats.MemoryLimit, 32<<20)
			}
			if s, _ := c.Status(); s != runtime.Running {
				t.Errorf("the container is %s; only the hog should have died", s)
			}
		})
	}
}

func TestPidsLimit(t *testing.T) {
	e := newEnv(t)
	c := e.start("pids", busybox.Options{PidsLimit: 8})
	st, out := e.exec(c, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo started")
	if !strings.Contains(out, "can't fork") && !strings.Contains(out, "Resource temporarily unavailable") {
		t.Errorf("forking past the pids limit did not fail: exit %v, output %q", st, out)
	}
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.PidsLimit != 8 || stats.Pids > 8 {
		t.Errorf("pids = %d limit %d, want at most 8 of 8", stats.Pids, stats.PidsLimit)
	}
}

func TestStatsAndUpdate(t *testing.T) {
	e := newEnv(t)
	c := e.start("stats", busybox.Options{Args: []string{"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 300"}})
	testutil.Eventually(t, "cpu time to be spent", func() bool {
		s, err := c.Stats()
		return err == nil && s.CPUUsageNanos > 10_000_000
	})
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryUsage == 0 || s.Pids == 0 {
		t.Errorf("stats = %+v; want memory and pids above zero", s)
	}
	mem, pids, shares := int64(64<<20), int64(50), uint64(512)
	if err := c.Update(runtime.Resources{Memory: &mem, Pids: &pids, CPUShares: &shares}); err != nil {
		t.Fatal(err)
	}
	s, err = c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryLimit != uint64(mem) || s.PidsLimit != uint64(pids) {
		t.Errorf("after update: memory limit %d, pids limit %d; want %d, %d", s.MemoryLimit, s.PidsLimit, mem, pids)
	}
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", e.parent, "stats", "cpu.shares"))
	if err != nil || strings.TrimSpace(string(data)) != "512" {
		t.Errorf("cpu.shares = %q, %v; want 512", data, err)
	}
	bad := int64(-5)
	if err := c.Update(runtime.Resources{Memory: &bad}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("update with memory -5: %v, want invalid argument", err)
	}
}

func TestLoadReadopts(t *testing.T) {
	e := newEnv(t)
	c := e.start("load", busybox.Options{})
	// A second runtime on the same state dir is what a restarted daemon sees.
	rt2, err := New(Options{StateDir: filepath.Join(e.dir, "state"), CgroupParent: e.parent})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	ids, err := rt2.List(context.Background())
	if err != nil || !slices.Equal(ids, []string{"load"}) {
		t.Fatalf("list = %v, %v", ids, err)
	}
	loaded, err := rt2.Load(context.Background(), "load")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Init().Pid() != c.Init().Pid() || loaded.BundlePath() != c.BundlePath() {
		t.Errorf("loaded init %d bundle %s; want %d %s", loaded.Init().Pid(), loaded.BundlePath(), c.Init().Pid(), c.BundlePath())
	}
	if s, _ := loaded.Status(); s != runtime.Running {
		t.Errorf("loaded status = %s", s)
	}
	if args := loaded.Init().Spec().Args; !slices.Equal(args, []string{"sleep", "3600"}) {
		t.Errorf("loaded init args = %q, want the bundle's", args)
	}
	st, out := e.exec(loaded, "echo", "still here")
	if st.Code != 0 || out != "still here\n" {
		t.Errorf("exec into a loaded container: %v %q", st, out)
	}
	if err := loaded.Signal(loaded.Init().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The first runtime is the init's parent and knows the status; the
	// loaded view sees the exit through a pidfd.
	wait(t, c.Init())
	if st := wait(t, loaded.Init()); st.Code != -1 {
		t.Errorf("exit seen by a non-parent = %v, want unknown", st)
	}
	if err := loaded.Delete(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	e.assertGone("load", c.LogPath())
	if _, err := rt2.Load(context.Background(), "load"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("load of a deleted container: %v, want not found", err)
	}
}

func TestBadBundles(t *testing.T) {
	e := newEnv(t)
	good := e.bundle("good", busybox.Options{})
	write := func(name, config string) string {
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if config != "" {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	goodConfig, err := os.ReadFile(filepath.Join(good, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		id    string
		inErr string
	}{
		{"relative path", "bundles/good", "rel", "must be absolute"},
		{"empty path", "", "empty", "required"},
		{"missing config.json", write("noconfig", ""), "noconf", "config.json does not exist"},
		{"invalid JSON", write("badjson", "{not json"), "badjson", "not a valid OCI runtime spec"},
		{"missing root", write("noroot", strings.Replace(string(goodConfig), filepath.Join(testDir, "rootfs"), "/no/such/rootfs", 1)), "noroot", "root.path"},
		{"no process", write("noproc", `{"ociVersion": "1.0.2", "root": {"path": "/"}, "linux": {}}`), "noproc", "process"},
		{"bad id", good, "../escape", "invalid container id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.rt.Start(context.Background(), tc.id, runtime.StartOptions{BundlePath: tc.path})
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("start: %v, want invalid argument", err)
			}
			if !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("error %q does not mention %q", err, tc.inErr)
			}
			if _, err := os.Stat(filepath.Join(e.rt.stateRoot, tc.id)); !os.IsNotExist(err) && tc.id != "../escape" {
				t.Errorf("a refused start left state behind")
			}
		})
	}
}

func TestFailedStartLeavesNothing(t *testing.T) {
	e := newEnv(t)
	p := e.bundle("nobin", busybox.Options{Args: []string{"/no/such/binary"}})
	_, err := e.rt.Start(context.Background(), "nobin", runtime.StartOptions{BundlePath: p})
	if err == nil {
		t.Fatal("start of a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %q does not name the cause", err)
	}
	e.assertGone("nobin", filepath.Join(e.dir, "state", "logs", "nobin.log"))
	// The id is free again.
	e.start("nobin", busybox.Options{})
}

func TestConcurrentStarts(t *testing.T) {
	e := newEnv(t)
	const n = 50
	b := e.bundle("shared", busybox.Options{})
	var wg sync.WaitGroup
	containers := make([]runtime.Container, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.rt.Start(context.Background(), fmt.Sprintf("c%02d", i), runtime.StartOptions{BundlePath: b})
			containers[i], errs[i] = c, err
			if err != nil {
				return
			}
			// At once: the init may still be in its execve, behind the
			// other starts' cgroup moves.
			ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer cancel()
			p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"true"}})
			if err == nil {
				var st runtime.ExitStatus
				if st, err = p.Wait(ctx); err == nil && st.Code != 0 {
					err = fmt.Errorf("exit %+v", st)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("exec right after the start: %w", err)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("c%02d: %v", i, err)
		}
	}
	for _, c := range containers {
		if c == nil {
			continue
		}
		if s, err := c.Status(); err != nil || s != runtime.Running {
			t.Errorf("%s: status %v, %v; %s", c.ID(), s, err, whyStopped(c))
		}
	}
	errs = make([]error, n)
	for i, c := range containers {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Delete(context.Background(), true)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("delete c%02d: %v", i, err)
		}
	}
	for i := range n {
		e.assertGone(fmt.Sprintf("c%02d", i), filepath.Join(e.dir, "state", "logs", fmt.Sprintf("c%02d.log", i)))
	}
	if ids, _ := e.rt.List(context.Background()); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
}

// whyStopped tells how a container that should run ended: its init's exit
// status and log.
func whyStopped(c runtime.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Init().Wait(ctx)
	log, _ := os.ReadFile(c.LogPath())
	return fmt.Sprintf("init pid %d: exit %+v, %v; log %q", c.Init().Pid(), st, err, log)
}

func TestSecurityFromSpec(t *testing.T) {
	e := newEnv(t)
	c := e.start("secure", busybox.Options{ReadOnly: true})
	st, out := e.exec(c, "sh", "-c", "touch /etc/x 2>&1; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
	if st.Code != 0 {
		t.Fatalf("exit = %v, output %q", st, out)
	}
	if !strings.Contains(out, "Read-only file system") {
		t.Errorf("writing to a read-only root did not fail: %q", out)
	}
	if !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("no_new_privileges not set: %q", out)
	}
	// The bundle grants docker's default set, which lacks CAP_SYS_ADMIN
	// (bit 21); full root would be 000001ffffffffff.
	var capEff uint64
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			capEff, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	if capEff == 0 || capEff&(1<<21) != 0 || capEff&(1<<5) == 0 {
		t.Errorf("CapEff = %x; want CAP_KILL (5) without CAP_SYS_ADMIN (21)", capEff)
	}
}
