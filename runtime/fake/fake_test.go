package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
)

// bundlePath is any absolute path: the fake never reads it.
const bundlePath = "/bundles/busybox"

// start starts a container named after the test, or id when given.
func start(t *testing.T, rt *Runtime, id string) *Container {
	t.Helper()
	c, err := rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: bundlePath})
	if err != nil {
		t.Fatalf("start %q: %v", id, err)
	}
	return c.(*Container)
}

func execp(t *testing.T, c *Container, args ...string) *Process {
	t.Helper()
	p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: args})
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	return p.(*Process)
}

// wait returns the exit status of p, which must end promptly.
func wait(t *testing.T, p runtime.Process) runtime.ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("wait for pid %d: %v", p.Pid(), err)
	}
	return st
}

func done(p runtime.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func status(t *testing.T, c runtime.Container) runtime.Status {
	t.Helper()
	s, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestStartValidation(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		bundle string
		want   error
	}{
		{"ok", "web-1", bundlePath, nil},
		{"ok unclean path", "web", "/bundles//x/../busybox/", nil},
		{"empty id", "", bundlePath, errclass.InvalidArgument},
		{"slash in id", "a/b", bundlePath, errclass.InvalidArgument},
		{"leading dot", "..", bundlePath, errclass.InvalidArgument},
		{"empty bundle", "web", "", errclass.InvalidArgument},
		{"relative bundle", "web", "bundles/busybox", errclass.InvalidArgument},
		{"bad bundle", "web", "/bundles/bad", errclass.InvalidArgument},
		{"bad bundle unclean", "web", "/bundles/./bad/", errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := New(Options{BadBundles: []string{"/bundles/bad"}})
			c, err := rt.Start(context.Background(), tc.id, runtime.StartOptions{BundlePath: tc.bundle})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("start: %v, want %v", err, tc.want)
			}
			if err != nil {
				if c != nil {
					t.Errorf("a failed start returned a container")
				}
				if ids, _ := rt.List(context.Background()); len(ids) != 0 {
					t.Errorf("a failed start left %v behind", ids)
				}
				return
			}
			if got := c.BundlePath(); got != bundlePath {
				t.Errorf("bundle path = %q, want %q", got, bundlePath)
			}
			if s := status(t, c); s != runtime.Running {
				t.Errorf("status = %s, want running", s)
			}
		})
	}
}

func TestStartDuplicateDeleteReuse(t *testing.T) {
	ctx := context.Background()
	rt := New(Options{})
	c := start(t, rt, "dup")
	if _, err := rt.Start(ctx, "dup", runtime.StartOptions{BundlePath: bundlePath}); !errors.Is(err, errclass.AlreadyExists) {
		t.Fatalf("second start: %v, want already exists", err)
	}
	if s := status(t, c); s != runtime.Running {
		t.Fatalf("the first container is %s after a refused duplicate", s)
	}
	if err := c.Delete(ctx, false); !errors.Is(err, errclass.FailedPrecondition) {
		t.Fatalf("delete running without force: %v, want failed precondition", err)
	}
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load(ctx, "dup"); !errors.Is(err, errclass.NotFound) {
		t.Fatalf("load after delete: %v, want not found", err)
	}
	again := start(t, rt, "dup")
	if again == c || again.Init().Pid() == c.Init().Pid() {
		t.Fatalf("the reused id got the old container or pid")
	}
	// Deleting the old object again must not touch the new container.
	if err := c.Delete(ctx, false); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if got, err := rt.Load(ctx, "dup"); err != nil || got != again {
		t.Fatalf("load = %v, %v; want the new container", got, err)
	}
}

func TestPidsIncrease(t *testing.T) {
	rt := New(Options{})
	a := start(t, rt, "a")
	p := execp(t, a, "sleep", "1")
	b := start(t, rt, "b")
	got := []int{a.Init().Pid(), p.Pid(), b.Init().Pid()}
	want := []int{DefaultFirstPid, DefaultFirstPid + 1, DefaultFirstPid + 2}
	if !slices.Equal(got, want) {
		t.Fatalf("pids = %v, want %v", got, want)
	}
	if pid := start(t, New(Options{FirstPid: 42}), "c").Init().Pid(); pid != 42 {
		t.Errorf("pid with FirstPid 42 = %d", pid)
	}
}

func TestLoadList(t *testing.T) {
	ctx := context.Background()
	rt := New(Options{})
	if ids, err := rt.List(ctx); err != nil || ids != nil {
		t.Fatalf("list of an empty runtime = %v, %v", ids, err)
	}
	var started []*Container
	for _, id := range []string{"zeta", "alpha", "mid"} {
		started = append(started, start(t, rt, id))
	}
	ids, err := rt.List(ctx)
	if want := []string{"alpha", "mid", "zeta"}; err != nil || !slices.Equal(ids, want) {
		t.Fatalf("list = %v, %v; want %v", ids, err, want)
	}
	tests := []struct {
		id   string
		want error
	}{
		{"zeta", nil},
		{"nope", errclass.NotFound},
		{"../etc", errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			c, err := rt.Load(ctx, tc.id)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("load: %v, want %v", err, tc.want)
			}
			if err == nil && c != started[0] {
				t.Errorf("load returned another object")
			}
		})
	}
	if rt.Lookup("mid") != started[2] || rt.Lookup("nope") != nil {
		t.Errorf("Lookup does not match Start")
	}
}

func TestSignal(t *testing.T) {
	tests := []struct {
		name    string
		target  string // "init" or "exec"
		sig     syscall.Signal
		ignores []syscall.Signal
		kills   bool
	}{
		{"init SIGKILL", "init", syscall.SIGKILL, nil, true},
		{"init SIGTERM", "init", syscall.SIGTERM, nil, true},
		{"init SIGINT", "init", syscall.SIGINT, nil, true},
		{"init SIGHUP", "init", syscall.SIGHUP, nil, true},
		{"init SIGQUIT", "init", syscall.SIGQUIT, nil, true},
		{"init SIGUSR1", "init", syscall.SIGUSR1, nil, false},
		{"init SIGUSR2", "init", syscall.SIGUSR2, nil, false},
		{"init SIGCONT", "init", syscall.SIGCONT, nil, false},
		{"init probe", "init", 0, nil, false},
		{"init ignores SIGTERM", "init", syscall.SIGTERM, []syscall.Signal{syscall.SIGTERM}, false},
		{"init cannot ignore SIGKILL", "init", syscall.SIGKILL, []syscall.Signal{syscall.SIGKILL}, true},
		{"exec SIGTERM", "exec", syscall.SIGTERM, nil, true},
		{"exec SIGTERM despite InitIgnores", "exec", syscall.SIGTERM, []syscall.Signal{syscall.SIGTERM}, true},
		{"exec SIGUSR1", "exec", syscall.SIGUSR1, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := New(Options{InitIgnores: tc.ignores})
			c := start(t, rt, "sig")
			other := execp(t, c, "sleep", "1")
			var target runtime.Process = c.Init()
			if tc.target == "exec" {
				target = execp(t, c, "sleep", "2")
			}
			if err := c.Signal(target.Pid(), tc.sig); err != nil {
				t.Fatal(err)
			}
			if got := c.Signals(); !slices.Equal(got, []SignalCall{{target.Pid(), tc.sig}}) {
				t.Errorf("recorded signals = %v", got)
			}
			if !tc.kills {
				if done(target) || status(t, c) != runtime.Running {
					t.Fatalf("%v ended the process", tc.sig)
				}
				return
			}
			st := wait(t, target)
			if st.Signal != tc.sig || st.Code != 128+int(tc.sig) || st.At.IsZero() {
				t.Errorf("exit = %+v, want killed by %v", st, tc.sig)
			}
			if err := c.Signal(target.Pid(), tc.sig); !errors.Is(err, errclass.NotFound) {
				t.Errorf("signal to the dead process: %v, want not found", err)
			}
			if tc.target == "exec" && (done(other) || status(t, c) != runtime.Running) {
				t.Errorf("killing one exec'd process ended more")
			}
		})
	}
}

func TestSignalUnknownPid(t *testing.T) {
	rt := New(Options{})
	c := start(t, rt, "a")
	b := start(t, rt, "b")
	pb := execp(t, b, "sleep", "1")
	for _, pid := range []int{1, 0, -1, os.Getpid(), b.Init().Pid(), pb.Pid()} {
		t.Run(fmt.Sprint(pid), func(t *testing.T) {
			if err := c.Signal(pid, syscall.SIGKILL); !errors.Is(err, errclass.NotFound) {
				t.Errorf("signal: %v, want not found", err)
			}
		})
	}
	if done(b.Init()) || done(pb) || len(c.Signals()) != 0 {
		t.Errorf("a refused signal had an effect")
	}
}

func TestExit(t *testing.T) {
	tests := []struct {
		name   string
		target string // "init" or "exec"
		code   int
		want   error
	}{
		{"init zero", "init", 0, nil},
		{"init code", "init", 3, nil},
		{"exec code", "exec", 255, nil},
		{"negative", "exec", -1, errclass.InvalidArgument},
		{"too big", "init", 256, errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{}), "exit")
			var p runtime.Process = c.Init()
			if tc.target == "exec" {
				p = execp(t, c, "true")
			}
			err := c.Exit(p.Pid(), tc.code)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("exit: %v, want %v", err, tc.want)
			}
			if err != nil {
				if done(p) {
					t.Errorf("a refused exit ended the process")
				}
				return
			}
			if st := wait(t, p); st.Code != tc.code || st.Signal != 0 {
				t.Errorf("status = %+v, want code %d", st, tc.code)
			}
			if err := c.Exit(p.Pid(), 0); !errors.Is(err, errclass.NotFound) {
				t.Errorf("second exit: %v, want not found", err)
			}
		})
	}
}

// TestInitEndKillsExecs checks the pid namespace rule and the documented
// order: every exec'd process is done once the init's Done is closed.
func TestInitEndKillsExecs(t *testing.T) {
	tests := []struct {
		name string
		end  func(c *Container) error
		want runtime.ExitStatus
	}{
		{"exit", func(c *Container) error { return c.Exit(c.Init().Pid(), 7) }, runtime.ExitStatus{Code: 7}},
		{"SIGTERM", func(c *Container) error { return c.Signal(c.Init().Pid(), syscall.SIGTERM) }, runtime.ExitStatus{Code: 143, Signal: syscall.SIGTERM}},
		{"oom", func(c *Container) error { return c.OOMKill(c.Init().Pid()) }, runtime.ExitStatus{Code: 137, Signal: syscall.SIGKILL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{}), "ns")
			var execs []*Process
			for range 3 {
				execs = append(execs, execp(t, c, "sleep", "300"))
			}
			ordered := make(chan bool)
			go func() {
				<-c.Init().Done()
				all := true
				for _, p := range execs {
					all = all && done(p)
				}
				ordered <- all
			}()
			if err := tc.end(c); err != nil {
				t.Fatal(err)
			}
			if !<-ordered {
				t.Errorf("the init's Done closed before every exec'd process's")
			}
			if st := wait(t, c.Init()); st.Code != tc.want.Code || st.Signal != tc.want.Signal {
				t.Errorf("init exit = %+v, want %+v", st, tc.want)
			}
			for _, p := range execs {
				if st := wait(t, p); st.Signal != syscall.SIGKILL || st.Code != 137 {
					t.Errorf("exec'd pid %d exit = %+v, want SIGKILL", p.Pid(), st)
				}
			}
			if s := status(t, c); s != runtime.Stopped {
				t.Errorf("status = %s, want stopped", s)
			}
			if pids, err := c.Processes(); err != nil || len(pids) != 0 {
				t.Errorf("processes of a stopped container = %v, %v", pids, err)
			}
			if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
				t.Errorf("exec into a stopped container: %v, want failed precondition", err)
			}
			if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); !errors.Is(err, errclass.NotFound) {
				t.Errorf("signal to the dead init: %v, want not found", err)
			}
			if err := c.Delete(context.Background(), false); err != nil {
				t.Errorf("delete of a stopped container: %v", err)
			}
		})
	}
}

func TestExecSpecAndErrors(t *testing.T) {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		spec  runtime.ProcessSpec
		setup func(c *Container)
		want  error
	}{
		{"ok", ctx, runtime.ProcessSpec{Args: []string{"echo", "hi"}}, nil, nil},
		{"no args", ctx, runtime.ProcessSpec{}, nil, errclass.InvalidArgument},
		{"paused", ctx, runtime.ProcessSpec{Args: []string{"true"}}, func(c *Container) { c.Pause() }, errclass.FailedPrecondition},
		{"stopped", ctx, runtime.ProcessSpec{Args: []string{"true"}}, func(c *Container) { c.Exit(c.Init().Pid(), 0) }, errclass.FailedPrecondition},
		{"deleted", ctx, runtime.ProcessSpec{Args: []string{"true"}}, func(c *Container) { c.Delete(ctx, true) }, errclass.FailedPrecondition},
		{"canceled", canceled, runtime.ProcessSpec{Args: []string{"true"}}, nil, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{}), "exec")
			if tc.setup != nil {
				tc.setup(c)
			}
			p, err := c.Exec(tc.ctx, tc.spec)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("exec: %v, want %v", err, tc.want)
			}
			if err != nil {
				if p != nil {
					t.Errorf("a failed exec returned a process")
				}
				return
			}
			spec := p.(*Process).Spec()
			if !slices.Equal(spec.Args, tc.spec.Args) || spec.Cwd != "/" {
				t.Errorf("spec = %+v", spec)
			}
			if p.(*Process).IsInit() || !c.Init().(*Process).IsInit() {
				t.Errorf("IsInit is wrong")
			}
			if c.Process(p.Pid()) != p || c.Process(c.Init().Pid()) != c.Init() {
				t.Errorf("Process does not find the container's processes")
			}
		})
	}
}

func TestProcessesOrder(t *testing.T) {
	c := start(t, New(Options{}), "ps")
	a, b, d := execp(t, c, "a"), execp(t, c, "b"), execp(t, c, "d")
	if err := c.Exit(b.Pid(), 0); err != nil {
		t.Fatal(err)
	}
	pids, err := c.Processes()
	if want := []int{c.Init().Pid(), a.Pid(), d.Pid()}; err != nil || !slices.Equal(pids, want) {
		t.Fatalf("processes = %v, %v; want %v", pids, err, want)
	}
	if c.Process(b.Pid()) != nil {
		t.Errorf("Process finds an exited exec'd process")
	}
}

func TestPauseResumeTransitions(t *testing.T) {
	type step struct {
		op   string // "pause" or "resume"
		want error
		then runtime.Status
	}
	tests := []struct {
		name  string
		steps []step
		stop  bool // end the init first
	}{
		{"pause resume", []step{{"pause", nil, runtime.Paused}, {"resume", nil, runtime.Running}}, false},
		{"pause twice", []step{{"pause", nil, runtime.Paused}, {"pause", errclass.FailedPrecondition, runtime.Paused}}, false},
		{"resume running", []step{{"resume", errclass.FailedPrecondition, runtime.Running}}, false},
		{"resume twice", []step{{"pause", nil, runtime.Paused}, {"resume", nil, runtime.Running}, {"resume", errclass.FailedPrecondition, runtime.Running}}, false},
		{"pause stopped", []step{{"pause", errclass.FailedPrecondition, runtime.Stopped}}, true},
		{"resume stopped", []step{{"resume", errclass.FailedPrecondition, runtime.Stopped}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{}), "pause")
			if tc.stop {
				if err := c.Exit(c.Init().Pid(), 0); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tc.steps {
				var err error
				if s.op == "pause" {
					err = c.Pause()
				} else {
					err = c.Resume()
				}
				if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
					t.Fatalf("step %d %s: %v, want %v", i, s.op, err, s.want)
				}
				if got := status(t, c); got != s.then {
					t.Fatalf("step %d %s: status %s, want %s", i, s.op, got, s.then)
				}
			}
		})
	}
}

func TestSignalWhilePaused(t *testing.T) {
	tests := []struct {
		name    string
		unified bool
		sig     syscall.Signal
		target  string // "init" or "exec"
		atOnce  bool   // dies before Resume
	}{
		{"v1 SIGKILL init waits for thaw", false, syscall.SIGKILL, "init", false},
		{"v1 SIGTERM exec waits for thaw", false, syscall.SIGTERM, "exec", false},
		{"v2 SIGKILL init at once", true, syscall.SIGKILL, "init", true},
		{"v2 SIGTERM exec at once", true, syscall.SIGTERM, "exec", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{Unified: tc.unified}), "frozen")
			var p runtime.Process = c.Init()
			if tc.target == "exec" {
				p = execp(t, c, "sleep", "300")
			}
			if err := c.Pause(); err != nil {
				t.Fatal(err)
			}
			if err := c.Exit(p.Pid(), 0); !errors.Is(err, errclass.FailedPrecondition) {
				t.Errorf("exit of a frozen process: %v, want failed precondition", err)
			}
			if err := c.Signal(p.Pid(), tc.sig); err != nil {
				t.Fatal(err)
			}
			if done(p) != tc.atOnce {
				t.Fatalf("done before resume = %v, want %v", done(p), tc.atOnce)
			}
			if !tc.atOnce {
				if s := status(t, c); s != runtime.Paused {
					t.Errorf("status with a pending kill = %s, want paused", s)
				}
				// A second signal to the frozen process still finds it.
				if err := c.Signal(p.Pid(), syscall.SIGKILL); err != nil {
					t.Errorf("second signal: %v", err)
				}
			}
			// Resume thaws even a stopped container whose cgroup is
			// frozen, as libcontainer does.
			if err := c.Resume(); err != nil {
				t.Fatal(err)
			}
			st := wait(t, p)
			want := tc.sig
			if !tc.atOnce {
				want = syscall.SIGKILL // the later SIGKILL wins
			}
			if st.Signal != want {
				t.Errorf("exit = %+v, want killed by %v", st, want)
			}
			wantStatus := runtime.Running
			if tc.target == "init" {
				wantStatus = runtime.Stopped
			}
			if s := status(t, c); s != wantStatus {
				t.Errorf("status = %s, want %s", s, wantStatus)
			}
		})
	}
}

func TestUpdateAndStats(t *testing.T) {
	tests := []struct {
		name string
		res  runtime.Resources
		want error
		mem  uint64 // MemoryLimit in Stats after
		pids uint64 // PidsLimit in Stats after
	}{
		{"nothing", runtime.Resources{}, nil, hostMemory, 0},
		{"memory", runtime.Resources{Memory: ptr[int64](64 << 20)}, nil, 64 << 20, 0},
		{"memory unlimited", runtime.Resources{Memory: ptr[int64](-1)}, nil, hostMemory, 0},
		{"memory zero", runtime.Resources{Memory: ptr[int64](0)}, errclass.InvalidArgument, hostMemory, 0},
		{"memory negative", runtime.Resources{Memory: ptr[int64](-2)}, errclass.InvalidArgument, hostMemory, 0},
		{"pids", runtime.Resources{Pids: ptr[int64](8)}, nil, hostMemory, 8},
		{"pids zero", runtime.Resources{Pids: ptr[int64](0)}, errclass.InvalidArgument, hostMemory, 0},
		{"shares", runtime.Resources{CPUShares: ptr[uint64](512)}, nil, hostMemory, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{}), "upd")
			execp(t, c, "sleep", "1")
			err := c.Update(tc.res)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("update: %v, want %v", err, tc.want)
			}
			s, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.MemoryLimit != tc.mem || s.PidsLimit != tc.pids {
				t.Errorf("limits = %d, %d; want %d, %d", s.MemoryLimit, s.PidsLimit, tc.mem, tc.pids)
			}
			if s.Pids != 2 || s.MemoryUsage == 0 || s.MemoryMaxUsage < s.MemoryUsage || s.CPUUsageNanos == 0 || s.IOReadBytes == 0 {
				t.Errorf("implausible stats %+v", s)
			}
			if tc.res.CPUShares != nil && *c.Resources().CPUShares != *tc.res.CPUShares {
				t.Errorf("resources = %+v", c.Resources())
			}
		})
	}
}

func TestStatsAndUpdateAfterStop(t *testing.T) {
	ctx := context.Background()
	c := start(t, New(Options{}), "gone")
	first, _ := c.Stats()
	second, _ := c.Stats()
	if second.CPUUsageNanos <= first.CPUUsageNanos {
		t.Errorf("CPU usage did not grow: %d then %d", first.CPUUsageNanos, second.CPUUsageNanos)
	}
	if err := c.Exit(c.Init().Pid(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(runtime.Resources{Pids: ptr[int64](4)}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("update of a stopped container: %v, want failed precondition", err)
	}
	if s, err := c.Stats(); err != nil || s.Pids != 0 || s.MemoryMaxUsage == 0 {
		t.Errorf("stats of a stopped container = %+v, %v", s, err)
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stats(); !errors.Is(err, errclass.NotFound) {
		t.Errorf("stats after delete: %v, want not found", err)
	}
}

// oomEnded reports whether c's OOM reports have ended, and how many OnOOM
// callbacks it holds: a callback registered after the end is dropped.
func oomEnded(c *Container) (bool, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.oomDone, len(c.oomFns)
}

func TestOOM(t *testing.T) {
	tests := []struct {
		name    string
		unified bool
		victim  string // "", "init" or "exec"
		endStop bool   // the OOM reports end when the container stops
	}{
		{"no victim", false, "", false},
		{"kill exec", false, "exec", false},
		{"kill init v1", false, "init", false},
		{"kill init v2", true, "init", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{Unified: tc.unified}), "oom")
			hog := execp(t, c, "hog")
			ch := make(chan struct{}, 8)
			if err := c.OnOOM(func() { ch <- struct{}{} }); err != nil {
				t.Fatal(err)
			}
			var victim runtime.Process
			switch tc.victim {
			case "init":
				victim = c.Init()
			case "exec":
				victim = hog
			}
			pid := 0
			if victim != nil {
				pid = victim.Pid()
			}
			if err := c.OOMKill(pid); err != nil {
				t.Fatal(err)
			}
			testutil.Receive(t, "the OOM notification", ch)
			if s, _ := c.Stats(); s.OOMKills != 1 {
				t.Errorf("OOMKills = %d", s.OOMKills)
			}
			if tc.victim != "" {
				if st := wait(t, victim); st.Signal != syscall.SIGKILL {
					t.Errorf("victim exit = %+v", st)
				}
			}
			if tc.victim == "exec" && status(t, c) != runtime.Running {
				t.Errorf("killing an exec'd process stopped the container")
			}
			select {
			case <-ch:
				t.Fatal("a second OOM notification for one kill")
			default:
			}
			if ended, _ := oomEnded(c); ended != tc.endStop {
				t.Fatalf("OOM reports ended after the kill: %v, want %v (only once stopped with Unified)", ended, tc.endStop)
			}
			if err := c.Delete(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ch:
				t.Fatal("an OOM notification after delete")
			default:
			}
			if ended, n := oomEnded(c); !ended || n != 0 {
				t.Fatalf("after delete: OOM reports ended %v, %d callbacks kept; want ended, none", ended, n)
			}
			if err := c.OnOOM(func() { t.Error("an OOM callback of a deleted container called") }); !errors.Is(err, errclass.NotFound) {
				t.Errorf("OnOOM after delete: %v, want not found", err)
			}
			if err := c.OOMKill(0); !errors.Is(err, errclass.NotFound) {
				t.Errorf("OOMKill after delete: %v, want not found", err)
			}
		})
	}
}

// TestOnOOM checks the OOM callbacks: every one called once per kill,
// before the victim's Done is closed and its OnExit callbacks run, and none
// after the container is gone.
func TestOnOOM(t *testing.T) {
	tests := []struct {
		name    string
		unified bool
		victim  string // "", "init" or "exec"
	}{
		{"no victim", false, ""},
		{"kill exec", false, "exec"},
		{"kill init v1", false, "init"},
		{"kill init v2", true, "init"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, New(Options{Unified: tc.unified}), "oom")
			hog := execp(t, c, "hog")
			var victim runtime.Process
			switch tc.victim {
			case "init":
				victim = c.Init()
			case "exec":
				victim = hog
			}
			events := make(chan string, 8)
			for _, name := range []string{"oom 1", "oom 2"} {
				err := c.OnOOM(func() {
					if victim != nil {
						select {
						case <-victim.Done():
							events <- name + " after Done"
							return
						default:
						}
					}
					events <- name
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			pid := 0
			if victim != nil {
				pid = victim.Pid()
				victim.OnExit(func(runtime.ExitStatus) { events <- "exit" })
			}
			if err := c.OOMKill(pid); err != nil {
				t.Fatal(err)
			}
			want := []string{"oom 1", "oom 2"}
			if victim != nil {
				want = append(want, "exit")
			}
			for i, w := range want {
				if got := testutil.Receive(t, w, events); got != w {
					t.Fatalf("event %d = %q, want %q (all: %q)", i, got, w, want)
				}
			}
			if err := c.Delete(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-events:
				t.Errorf("%q after delete", e)
			default:
			}
			if err := c.OnOOM(func() {}); !errors.Is(err, errclass.NotFound) {
				t.Errorf("OnOOM after delete: %v, want not found", err)
			}
		})
	}
}

func TestOOMErrors(t *testing.T) {
	c := start(t, New(Options{}), "oom")
	if err := c.OOMKill(12345); !errors.Is(err, errclass.NotFound) {
		t.Errorf("OOMKill of an unknown pid: %v, want not found", err)
	}
	if err := c.Exit(c.Init().Pid(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.OOMKill(0); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("OOMKill in a stopped container: %v, want failed precondition", err)
	}
	// cgroup v1: a stopped container's OOM reports go on until delete.
	if err := c.OnOOM(func() {}); err != nil {
		t.Fatal(err)
	}
	if ended, n := oomEnded(c); ended || n != 1 {
		t.Fatalf("stopped v1 container: OOM reports ended %v, %d callbacks kept; want not ended, 1", ended, n)
	}
	// cgroup v2: a callback registered after the stop is accepted and
	// dropped, never called.
	u := start(t, New(Options{Unified: true}), "oom")
	u.Exit(u.Init().Pid(), 0)
	if err := u.OnOOM(func() { t.Error("an OOM callback of a stopped v2 container called") }); err != nil {
		t.Fatal(err)
	}
	if ended, n := oomEnded(u); !ended || n != 0 {
		t.Fatalf("stopped v2 container: OOM reports ended %v, %d callbacks kept; want ended, none", ended, n)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *Container)
		force bool
		want  error
	}{
		{"running", nil, false, errclass.FailedPrecondition},
		{"running force", nil, true, nil},
		{"paused", func(c *Container) { c.Pause() }, false, errclass.FailedPrecondition},
		{"paused force", func(c *Container) { c.Pause() }, true, nil},
		{"stopped", func(c *Container) { c.Exit(c.Init().Pid(), 0) }, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			rt := New(Options{LogDir: dir})
			c := start(t, rt, "del")
			p := execp(t, c, "sleep", "300")
			if c.LogPath() != filepath.Join(dir, "del.log") {
				t.Fatalf("log path = %q", c.LogPath())
			}
			if _, err := os.Stat(c.LogPath()); err != nil {
				t.Fatalf("no log file: %v", err)
			}
			if tc.setup != nil {
				tc.setup(c)
			}
			err := c.Delete(ctx, tc.force)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("delete: %v, want %v", err, tc.want)
			}
			if err != nil {
				if _, err := rt.Load(ctx, "del"); err != nil {
					t.Errorf("a refused delete removed the container: %v", err)
				}
				return
			}
			if tc.force && (wait(t, c.Init()).Signal != syscall.SIGKILL || wait(t, p).Signal != syscall.SIGKILL) {
				t.Errorf("force did not SIGKILL: init %+v, exec %+v", wait(t, c.Init()), wait(t, p))
			}
			if !done(c.Init()) || !done(p) {
				t.Errorf("processes live after delete")
			}
			if s := status(t, c); s != runtime.Stopped {
				t.Errorf("status after delete = %s", s)
			}
			if _, err := rt.Load(ctx, "del"); !errors.Is(err, errclass.NotFound) {
				t.Errorf("load after delete: %v, want not found", err)
			}
			if ids, _ := rt.List(ctx); len(ids) != 0 {
				t.Errorf("list after delete = %v", ids)
			}
			if _, err := os.Stat(c.LogPath()); !os.IsNotExist(err) {
				t.Errorf("log file after delete: %v", err)
			}
			if err := c.Pause(); !errors.Is(err, errclass.FailedPrecondition) {
				t.Errorf("pause after delete: %v", err)
			}
			if err := c.Delete(ctx, false); err != nil {
				t.Errorf("second delete: %v", err)
			}
			start(t, rt, "del") // the id is free again
		})
	}
}

func TestLogPathWithoutLogDir(t *testing.T) {
	c := start(t, New(Options{}), "nolog")
	if !filepath.IsAbs(c.LogPath()) || filepath.Base(c.LogPath()) != "nolog.log" {
		t.Errorf("log path = %q", c.LogPath())
	}
	if _, err := os.Stat(c.LogPath()); !os.IsNotExist(err) {
		t.Errorf("the fake created %s without a LogDir: %v", c.LogPath(), err)
	}
}

func TestWaitContext(t *testing.T) {
	c := start(t, New(Options{}), "wait")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Init().Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a live process: %v, want deadline exceeded", err)
	}
	c.Exit(c.Init().Pid(), 4)
	// An exited process reports its status even to a done ctx.
	if st, err := c.Init().Wait(ctx); err != nil || st.Code != 4 {
		t.Fatalf("wait = %+v, %v; want code 4", st, err)
	}
	if got := (runtime.ExitStatus{Code: 4}).String(); got != "exit code 4" {
		t.Errorf("String = %q", got)
	}
}

func TestGateCountsInFlight(t *testing.T) {
	const n = 5
	gate := make(chan struct{})
	rt := New(Options{Gate: gate})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := rt.Start(context.Background(), fmt.Sprintf("c%d", i), runtime.StartOptions{BundlePath: bundlePath})
			errs <- err
		})
	}
	testutil.Eventually(t, "every start to reach the gate", func() bool { return rt.InFlight() == n })
	// A held start has reserved its id: a duplicate fails at once, and the
	// container is not yet visible.
	if _, err := rt.Start(context.Background(), "c0", runtime.StartOptions{BundlePath: bundlePath}); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("duplicate of a held start: %v, want already exists", err)
	}
	if ids, _ := rt.List(context.Background()); len(ids) != 0 {
		t.Errorf("held starts are listed: %v", ids)
	}
	gate <- struct{}{} // release one
	testutil.Eventually(t, "one start to pass", func() bool { return rt.InFlight() == n-1 })
	close(gate) // release the rest
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if rt.InFlight() != 0 || rt.MaxInFlight() != n+1 || rt.StartCalls() != n+1 {
		t.Errorf("in flight %d, max %d, calls %d; want 0, %d, %d", rt.InFlight(), rt.MaxInFlight(), rt.StartCalls(), n+1, n+1)
	}
	if ids, _ := rt.List(context.Background()); len(ids) != n {
		t.Errorf("list = %v", ids)
	}
}

func TestStartFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		opts Options
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"hook error", Options{StartErr: func(context.Context, string, runtime.StartOptions) error {
			return errclass.With(errclass.Unavailable, boom)
		}}, nil, boom},
		{"canceled at the gate", Options{Gate: make(chan struct{})}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, context.DeadlineExceeded},
		{"canceled in the delay", Options{StartDelay: time.Hour}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, context.DeadlineExceeded},
		{"canceled before", Options{}, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := New(tc.opts)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			c, err := rt.Start(ctx, "fail", runtime.StartOptions{BundlePath: bundlePath})
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("start = %v, %v; want %v", c, err, tc.want)
			}
			if ids, _ := rt.List(context.Background()); len(ids) != 0 || rt.InFlight() != 0 {
				t.Fatalf("a failed start left %v, %d in flight", ids, rt.InFlight())
			}
			// Nothing is left behind: the id is free again.
			if err := idFree(rt, "fail"); err != nil {
				t.Errorf("id still taken: %v", err)
			}
		})
	}
}

// idFree checks that id could be started, without starting anything (the
// runtime under test fails every start on purpose).
func idFree(r *Runtime, id string) error {
	if err := r.reserve(id); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.reserved, id)
	r.mu.Unlock()
	return nil
}

func TestStartDelay(t *testing.T) {
	rt := New(Options{StartDelay: 20 * time.Millisecond})
	began := time.Now()
	start(t, rt, "slow")
	if d := time.Since(began); d < 20*time.Millisecond {
		t.Errorf("start took %v, want at least the delay", d)
	}
}

func TestAfterHooks(t *testing.T) {
	// An init that exits before Start returns, and an exec'd process that
	// exits before Exec returns: the caller must see them done, not lose
	// the exit.
	rt := New(Options{
		AfterStart: func(c *Container) {
			if c.ID() == "short" {
				c.Exit(c.Init().Pid(), 0)
			}
		},
		AfterExec: func(c *Container, p *Process) { c.Exit(p.Pid(), 9) },
		ExecErr: func(_ context.Context, _ *Container, spec runtime.ProcessSpec) error {
			if spec.Args[0] == "missing" {
				return errors.New("no such file")
			}
			return nil
		},
	})
	short := start(t, rt, "short")
	if !done(short.Init()) || status(t, short) != runtime.Stopped {
		t.Errorf("the short-lived init is not done when Start returns")
	}
	c := start(t, rt, "long")
	if st := wait(t, execp(t, c, "true")); st.Code != 9 {
		t.Errorf("exec exit = %+v, want 9", st)
	}
	if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"missing"}}); err == nil {
		t.Errorf("exec with a failing ExecErr succeeded")
	}
}

// TestConcurrentUse drives one runtime from many goroutines for the race
// detector.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	rt := New(Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			c, err := rt.Start(ctx, id, runtime.StartOptions{BundlePath: bundlePath})
			if err != nil {
				t.Error(err)
				return
			}
			fc := c.(*Container)
			// At most one OOM kill per exec below: the callback never
			// blocks.
			ooms := make(chan struct{}, 5)
			if err := c.OnOOM(func() { ooms <- struct{}{} }); err != nil {
				t.Error(err)
			}
			var kills atomic.Int32
			var inner sync.WaitGroup
			for range 5 {
				inner.Go(func() {
					p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"x"}})
					if err != nil {
						return // the container may already be paused or stopped
					}
					c.Processes()
					c.Stats()
					c.Pause()
					c.Resume()
					if fc.OOMKill(0) == nil {
						kills.Add(1)
					}
					c.Signal(p.Pid(), syscall.SIGTERM)
					rt.List(ctx)
				})
			}
			inner.Wait()
			c.Resume()
			if err := c.Delete(ctx, true); err != nil {
				t.Error(err)
			}
			// OOMKill calls the callbacks before it returns: one each
			// for the kills that succeeded, none since.
			if got, want := len(ooms), int(kills.Load()); got != want {
				t.Errorf("%s: %d OOM notifications for %d OOM kills", id, got, want)
			}
		})
	}
	wg.Wait()
	if ids, _ := rt.List(ctx); len(ids) != 0 {
		t.Errorf("left behind: %v", ids)
	}
}

// TestOnExitCallbacks checks the fake's exit callbacks: each is called once,
// after Done is closed and off the container's lock, with Wait's status;
// also when registered after the exit, and for exec'd processes ended with
// their init.
func TestOnExitCallbacks(t *testing.T) {
	tests := []struct {
		name string
		late bool
		end  func(c *Container, p runtime.Process) error
		exec bool
		code int
	}{
		{"init exits", false, func(c *Container, p runtime.Process) error { return c.Exit(p.Pid(), 3) }, false, 3},
		{"init killed", false, func(c *Container, p runtime.Process) error { return c.Signal(p.Pid(), syscall.SIGKILL) }, false, 137},
		{"exec'd process exits", false, func(c *Container, p runtime.Process) error { return c.Exit(p.Pid(), 5) }, true, 5},
		{"exec'd process ends with its init", false, func(c *Container, p runtime.Process) error {
			return c.Exit(c.Init().Pid(), 0)
		}, true, 137},
		{"already exited", true, func(c *Container, p runtime.Process) error { return c.Exit(p.Pid(), 4) }, false, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := New(Options{})
			rc, err := rt.Start(context.Background(), "c", runtime.StartOptions{BundlePath: bundlePath})
			if err != nil {
				t.Fatal(err)
			}
			c := rc.(*Container)
			p := c.Init()
			if tc.exec {
				if p, err = c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); err != nil {
					t.Fatal(err)
				}
			}
			type seen struct {
				st     runtime.ExitStatus
				done   bool
				status runtime.Status
			}
			got := make(chan seen, 2)
			register := func() {
				p.OnExit(func(st runtime.ExitStatus) {
					s := seen{st: st}
					select {
					case <-p.Done():
						s.done = true
					default:
					}
					s.status, _ = c.Status() // would deadlock under the container's lock
					got <- s
				})
			}
			if !tc.late {
				register()
			}
			if err := tc.end(c, p); err != nil {
				t.Fatal(err)
			}
			if tc.late {
				register()
			}
			var s seen
			select {
			case s = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("the callback was not called")
			}
			st, err := p.Wait(context.Background())
			if err != nil || st != s.st || st.Code != tc.code || !s.done {
				t.Errorf("callback %+v (done %v), Wait %+v %v; want code %d after Done", s.st, s.done, st, err, tc.code)
			}
			if !tc.exec && s.status != runtime.Stopped {
				t.Errorf("status seen by the init's callback = %s, want stopped", s.status)
			}
			select {
			case s2 := <-got:
				t.Errorf("the callback was called twice (%+v)", s2.st)
			default:
			}
		})
	}
}
