package runtimetest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// Env is what one case runs on.
type Env struct {
	// Runtime is a runtime with no container, for this case alone.
	Runtime runtime.Runtime
	// Bundle is an absolute bundle path whose init runs until it is
	// killed, in a root that has sh, sleep and cat and a writable tmpfs at
	// /dev/shm.
	Bundle string
	// BadBundle is an absolute bundle path that Start refuses with
	// errclass.InvalidArgument (no config.json, or listed as bad).
	BadBundle string
}

// Harness is how Run drives an implementation.
type Harness struct {
	// New makes an Env for the case t, and removes in t.Cleanup whatever
	// the runtime holds once the case's containers are deleted (state,
	// cgroups). The suite deletes the containers it starts.
	New func(t *testing.T) Env
	// Exit, when set, makes process p of c exit with code, for an
	// implementation whose processes run nothing: the suite calls it
	// right after it execs `sh -c "exit <code>"`. When nil the process
	// exits by itself.
	Exit func(t *testing.T, c runtime.Container, p runtime.Process, code int)
	// OOMKill, when set, has the OOM killer kill process p of c, for an
	// implementation whose processes allocate nothing (the fake plays the
	// kernel). The suite calls it once c's memory is limited and a memory
	// hog is exec'd, held before it allocates; p is the init or the hog.
	// When nil the suite gets the kernel to do it: it makes p the OOM
	// killer's choice (oom_score_adj 1000 in /proc) and lets the hog go.
	OOMKill func(t *testing.T, c runtime.Container, p runtime.Process)
	// Skip lists the cases (their names, as in Run's subtests) that the
	// implementation cannot pass, each with the reason.
	Skip map[string]string
	// Timeout bounds each wait for a process to exit; default 20 s.
	Timeout time.Duration
}

// Run runs the conformance suite against the implementation h drives,
// one subtest per case.
func Run(t *testing.T, h Harness) {
	if h.Timeout <= 0 {
		h.Timeout = 20 * time.Second
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := h.Skip[tc.name]; ok {
				t.Skip(why)
			}
			s := &suite{t: t, h: h, Env: h.New(t)}
			tc.run(s)
		})
	}
}

// suite is one case's state and helpers.
type suite struct {
	Env
	t *testing.T
	h Harness
}

var cases = []struct {
	name string
	run  func(s *suite)
}{
	{"start gives a running container", func(s *suite) {
		c := s.start("run")
		s.wantStatus(c, runtime.Running)
		ids, err := s.Runtime.List(context.Background())
		if err != nil || !slices.Equal(ids, []string{"run"}) {
			s.t.Errorf("List = %v, %v; want [run]", ids, err)
		}
		l, err := s.Runtime.Load(context.Background(), "run")
		if err != nil {
			s.t.Fatalf("Load: %v", err)
		}
		if l.ID() != "run" || l.Init().Pid() != c.Init().Pid() || l.BundlePath() != c.BundlePath() {
			s.t.Errorf("Load gives %q init %d bundle %q; Start gave init %d bundle %q",
				l.ID(), l.Init().Pid(), l.BundlePath(), c.Init().Pid(), c.BundlePath())
		}
		if c.BundlePath() != s.Bundle {
			s.t.Errorf("BundlePath = %q, want %q", c.BundlePath(), s.Bundle)
		}
	}},
	{"processes list the init first", func(s *suite) {
		c := s.start("procs")
		p := s.exec(c, "sleep", "300")
		pids, err := c.Processes()
		if err != nil {
			s.t.Fatal(err)
		}
		if len(pids) != 2 || pids[0] != c.Init().Pid() || pids[1] != p.Pid() {
			s.t.Errorf("Processes = %v, want [%d %d]", pids, c.Init().Pid(), p.Pid())
		}
	}},
	{"exec exit code", func(s *suite) {
		c := s.start("exec")
		for _, code := range []int{0, 7} {
			p := s.execExit(c, code)
			if st := s.wait(p); st.Code != code || st.Signal != 0 {
				s.t.Errorf("exit %+v, want code %d", st, code)
			}
		}
		s.wantStatus(c, runtime.Running)
	}},
	{"signal ends an exec'd process", func(s *suite) {
		c := s.start("sig")
		p := s.exec(c, "sleep", "300")
		if err := c.Signal(p.Pid(), syscall.SIGTERM); err != nil {
			s.t.Fatal(err)
		}
		if st := s.wait(p); st.Code != 128+int(syscall.SIGTERM) || st.Signal != syscall.SIGTERM {
			s.t.Errorf("exit %+v, want code %d by SIGTERM", st, 128+int(syscall.SIGTERM))
		}
		if err := c.Signal(p.Pid(), syscall.SIGTERM); !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("signal to an exited process: %v, want not found", err)
		}
		pids, err := c.Processes()
		if err != nil || !slices.Equal(pids, []int{c.Init().Pid()}) {
			s.t.Errorf("Processes = %v, %v; want the init alone", pids, err)
		}
	}},
	{"kill init exits 128+signal", func(s *suite) {
		c := s.start("kill")
		s.exec(c, "sleep", "300")
		if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
			s.t.Fatal(err)
		}
		if st := s.wait(c.Init()); st.Code != 128+int(syscall.SIGKILL) || st.Signal != syscall.SIGKILL {
			s.t.Errorf("exit %+v, want code %d by SIGKILL", st, 128+int(syscall.SIGKILL))
		}
		s.wantStatus(c, runtime.Stopped)
		if pids, err := c.Processes(); err != nil || len(pids) != 0 {
			s.t.Errorf("Processes of a stopped container = %v, %v", pids, err)
		}
		if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("signal to the exited init: %v, want not found", err)
		}
		if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("exec into a stopped container: %v, want failed precondition", err)
		}
		mem := int64(64 << 20)
		if err := c.Update(runtime.Resources{Memory: &mem}); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("update of a stopped container: %v, want failed precondition", err)
		}
		if err := c.Pause(); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("pause of a stopped container: %v, want failed precondition", err)
		}
	}},
	{"OnExit, Wait and Done agree", func(s *suite) {
		c := s.start("agree")
		type seen struct {
			st   runtime.ExitStatus
			done bool
		}
		got := make(chan seen, 2)
		p := c.Init()
		p.OnExit(func(st runtime.ExitStatus) {
			select {
			case <-p.Done():
				got <- seen{st, true}
			default:
				got <- seen{st, false}
			}
		})
		select {
		case <-p.Done():
			s.t.Fatal("Done is closed while the init runs")
		default:
		}
		if err := c.Signal(p.Pid(), syscall.SIGKILL); err != nil {
			s.t.Fatal(err)
		}
		var cb seen
		select {
		case cb = <-got:
		case <-time.After(s.h.Timeout):
			s.t.Fatalf("OnExit's callback not called within %v", s.h.Timeout)
		}
		if !cb.done {
			s.t.Error("OnExit's callback ran before Done was closed")
		}
		if st := s.wait(p); st != cb.st {
			s.t.Errorf("Wait = %+v, OnExit got %+v", st, cb.st)
		}
		// Registered after the exit: called all the same.
		p.OnExit(func(st runtime.ExitStatus) { got <- seen{st, true} })
		select {
		case late := <-got:
			if late.st != cb.st {
				s.t.Errorf("a late OnExit got %+v, the first %+v", late.st, cb.st)
			}
		case <-time.After(s.h.Timeout):
			s.t.Fatal("an OnExit registered after the exit was not called")
		}
	}},
	{"pause and resume", func(s *suite) {
		c := s.start("pause")
		if err := c.Pause(); err != nil {
			s.t.Fatal(err)
		}
		s.wantStatus(c, runtime.Paused)
		if err := c.Pause(); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("pause of a paused container: %v, want failed precondition", err)
		}
		if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("exec into a paused container: %v, want failed precondition", err)
		}
		if err := c.Resume(); err != nil {
			s.t.Fatal(err)
		}
		s.wantStatus(c, runtime.Running)
		if err := c.Resume(); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("resume of a running container: %v, want failed precondition", err)
		}
	}},
	{"stats", func(s *suite) {
		c := s.start("stats")
		st, err := c.Stats()
		if err != nil {
			s.t.Fatal(err)
		}
		if st == nil || st.Pids < 1 || st.MemoryUsage == 0 || st.MemoryLimit == 0 {
			s.t.Errorf("stats of a running container: %+v", st)
		}
	}},
	{"update", func(s *suite) {
		c := s.start("update")
		mem, pids := int64(64<<20), int64(50)
		if err := c.Update(runtime.Resources{Memory: &mem, Pids: &pids}); err != nil {
			s.t.Fatal(err)
		}
		st, err := c.Stats()
		if err != nil {
			s.t.Fatal(err)
		}
		if st.MemoryLimit != uint64(mem) || st.PidsLimit != uint64(pids) {
			s.t.Errorf("after update: memory limit %d, pids limit %d; want %d, %d", st.MemoryLimit, st.PidsLimit, mem, pids)
		}
		bad := int64(0)
		if err := c.Update(runtime.Resources{Pids: &bad}); !errors.Is(err, errclass.InvalidArgument) {
			s.t.Errorf("update to pids 0: %v, want invalid argument", err)
		}
	}},
	{"delete leaves List empty", func(s *suite) {
		c := s.start("del")
		ooms := make(chan struct{}, 16)
		if err := c.OnOOM(func() { ooms <- struct{}{} }); err != nil {
			s.t.Fatalf("OnOOM: %v", err)
		}
		if err := c.Delete(context.Background(), false); !errors.Is(err, errclass.FailedPrecondition) {
			s.t.Errorf("delete of a running container without force: %v, want failed precondition", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil {
			s.t.Fatal(err)
		}
		if ids, err := s.Runtime.List(context.Background()); err != nil || len(ids) != 0 {
			s.t.Errorf("List after delete = %v, %v", ids, err)
		}
		if _, err := s.Runtime.Load(context.Background(), "del"); !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("Load after delete: %v, want not found", err)
		}
		select {
		case <-c.Init().Done():
		default:
			s.t.Error("the init is not done after a forced delete")
		}
		// The forced delete's SIGKILL is no OOM kill. (That OnOOM fails
		// once the container is deleted is the case "OnOOM after delete".)
		select {
		case <-ooms:
			s.t.Error("an OOM kill reported for a container deleted with force")
		default:
		}
		// Not checked: Stats after Delete. The fake fails with
		// errclass.NotFound; package linux (cgroup v1) returns zeros.
		if err := c.Delete(context.Background(), false); err != nil {
			s.t.Errorf("delete of a deleted container: %v, want success", err)
		}
		// The id is free again.
		s.start("del")
	}},
	{"OnOOM reports each OOM kill once", func(s *suite) {
		c := s.start("oom")
		events := make(chan string, 16)
		for _, name := range []string{"oom 1", "oom 2"} {
			if err := c.OnOOM(func() { events <- name }); err != nil {
				s.t.Fatalf("OnOOM: %v", err)
			}
		}
		hog := s.oomKill(c, false, func(hog runtime.Process) {
			hog.OnExit(func(runtime.ExitStatus) { events <- "hog exit" })
		})
		if st := s.wait(hog); st.Signal != syscall.SIGKILL {
			s.t.Errorf("the hog's exit = %+v, want killed by SIGKILL", st)
		}
		// Every callback once, in the order registered, before the
		// victim's exit.
		s.wantEvents(events, "oom 1", "oom 2", "hog exit")
		s.wantStatus(c, runtime.Running)
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil {
			s.t.Fatal(err)
		}
		// The kill was reported already: nothing comes after, not even
		// of the init's end.
		select {
		case e := <-events:
			s.t.Errorf("%q after the kill was reported", e)
		case <-time.After(200 * time.Millisecond):
		}
	}},
	{"OOM kill of the init is reported before its exit", func(s *suite) {
		c := s.start("oominit")
		init := c.Init()
		events := make(chan string, 16)
		err := c.OnOOM(func() {
			select {
			case <-init.Done():
				events <- "oom after Done"
			default:
				events <- "oom"
			}
		})
		if err != nil {
			s.t.Fatalf("OnOOM: %v", err)
		}
		init.OnExit(func(runtime.ExitStatus) { events <- "exit" })
		s.oomKill(c, true, nil)
		if st := s.wait(init); st.Signal != syscall.SIGKILL {
			s.t.Errorf("the init's exit = %+v, want killed by SIGKILL", st)
		}
		// The kernel may kill more than once in one squeeze (a busy
		// machine): one report or more, all before the exit.
		s.wantEvents(events, "oom")
		for {
			e := s.nextEvent(events)
			if e == "exit" {
				break
			}
			if e != "oom" {
				s.t.Fatalf("event %q, want oom or exit", e)
			}
		}
	}},
	{"OnOOM after delete", func(s *suite) {
		c := s.start("oomdel")
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil {
			s.t.Fatal(err)
		}
		if err := c.OnOOM(func() { s.t.Error("an OOM callback of a deleted container called") }); !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("OnOOM after delete: %v, want not found", err)
		}
	}},
	{"start of an existing id", func(s *suite) {
		c := s.start("dup")
		_, err := s.Runtime.Start(context.Background(), "dup", runtime.StartOptions{BundlePath: s.Bundle})
		if !errors.Is(err, errclass.AlreadyExists) {
			s.t.Errorf("second start: %v, want already exists", err)
		}
		s.wantStatus(c, runtime.Running)
	}},
	{"load of an unknown id", func(s *suite) {
		if _, err := s.Runtime.Load(context.Background(), "nosuch"); !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("Load: %v, want not found", err)
		}
	}},
	{"invalid id", func(s *suite) {
		for _, id := range []string{"", "../x", "-x", "a/b"} {
			if _, err := s.Runtime.Start(context.Background(), id, runtime.StartOptions{BundlePath: s.Bundle}); !errors.Is(err, errclass.InvalidArgument) {
				s.t.Errorf("Start %q: %v, want invalid argument", id, err)
			}
			if _, err := s.Runtime.Load(context.Background(), id); !errors.Is(err, errclass.InvalidArgument) {
				s.t.Errorf("Load %q: %v, want invalid argument", id, err)
			}
		}
	}},
	{"join", func(s *suite) {
		sandbox := s.start("sandbox")
		pid := sandbox.Init().Pid()
		stopped := s.start("stopped")
		if err := stopped.Signal(stopped.Init().Pid(), syscall.SIGKILL); err != nil {
			s.t.Fatal(err)
		}
		s.wait(stopped.Init())
		for _, tc := range []struct {
			name string
			join runtime.Join
			want error
		}{
			{"unknown container", runtime.Join{Namespace: runtime.NetworkNamespace, Container: "nosuch", Pid: pid}, errclass.NotFound},
			{"not its init", runtime.Join{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid + 1000}, errclass.FailedPrecondition},
			{"stopped", runtime.Join{Namespace: runtime.IPCNamespace, Container: "stopped", Pid: stopped.Init().Pid()}, errclass.FailedPrecondition},
			{"itself", runtime.Join{Namespace: runtime.IPCNamespace, Container: "joiner", Pid: pid}, errclass.InvalidArgument},
			{"pid namespace", runtime.Join{Namespace: "pid", Container: "sandbox", Pid: pid}, errclass.InvalidArgument},
			{"no such namespace file", runtime.Join{Namespace: runtime.NetworkNamespace, Path: "/nonexistent/troupe/ns/net"}, errclass.NotFound},
			{"relative namespace path", runtime.Join{Namespace: runtime.NetworkNamespace, Path: "proc/self/ns/net"}, errclass.InvalidArgument},
			{"namespace path not clean", runtime.Join{Namespace: runtime.NetworkNamespace, Path: "/proc/self/../self/ns/net"}, errclass.InvalidArgument},
			{"a path and a container", runtime.Join{Namespace: runtime.NetworkNamespace, Path: "/proc/self/ns/net", Container: "sandbox", Pid: pid}, errclass.InvalidArgument},
		} {
			opts := runtime.StartOptions{BundlePath: s.Bundle, Join: []runtime.Join{tc.join}}
			if c, err := s.Runtime.Start(context.Background(), "joiner", opts); !errors.Is(err, tc.want) {
				if c != nil {
					_ = c.Delete(context.Background(), true)
				}
				s.t.Errorf("%s: Start: %v, want %v", tc.name, err, tc.want)
			}
		}
		opts := runtime.StartOptions{BundlePath: s.Bundle, Join: []runtime.Join{
			{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid},
			{Namespace: runtime.IPCNamespace, Container: "sandbox", Pid: pid}}}
		c, err := s.Runtime.Start(context.Background(), "joiner", opts)
		if err != nil {
			s.t.Fatalf("Start: %v", err)
		}
		s.t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
		s.wantStatus(c, runtime.Running)
		opts.Restore = &runtime.RestoreOptions{ImagesDir: "/nonexistent"}
		if err := opts.Validate(); !errors.Is(err, errclass.InvalidArgument) {
			s.t.Errorf("a restore that joins: %v, want invalid argument", err)
		}
	}},
	{"bad bundle", func(s *suite) {
		for _, b := range []string{s.BadBundle, "relative/bundle"} {
			opts := runtime.StartOptions{BundlePath: b}
			if err := s.Runtime.Check(context.Background(), "bad", opts); !errors.Is(err, errclass.InvalidArgument) {
				s.t.Errorf("Check with bundle %q: %v, want invalid argument", b, err)
			}
			if _, err := s.Runtime.Start(context.Background(), "bad", opts); !errors.Is(err, errclass.InvalidArgument) {
				s.t.Errorf("Start with bundle %q: %v, want invalid argument", b, err)
			}
		}
		if ids, err := s.Runtime.List(context.Background()); err != nil || len(ids) != 0 {
			s.t.Errorf("List after failed starts = %v, %v", ids, err)
		}
	}},
}

// start starts container id from the Env's bundle and deletes it, with
// force, when the case ends.
func (s *suite) start(id string) runtime.Container {
	s.t.Helper()
	c, err := s.Runtime.Start(context.Background(), id, runtime.StartOptions{BundlePath: s.Bundle})
	if err != nil {
		s.t.Fatalf("start %s: %v", id, err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil && !errors.Is(err, errclass.NotFound) {
			s.t.Errorf("cleanup: delete %s: %v", id, err)
		}
	})
	return c
}

// exec starts args in c.
func (s *suite) exec(c runtime.Container, args ...string) runtime.Process {
	s.t.Helper()
	p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: args})
	if err != nil {
		s.t.Fatalf("exec %q: %v", args, err)
	}
	return p
}

// execExit execs a process that exits with code.
func (s *suite) execExit(c runtime.Container, code int) runtime.Process {
	s.t.Helper()
	p := s.exec(c, "sh", "-c", "exit "+strconv.Itoa(code))
	if s.h.Exit != nil {
		s.h.Exit(s.t, c, p, code)
	}
	return p
}

// wait waits for p to exit, up to the harness's timeout.
func (s *suite) wait(p runtime.Process) runtime.ExitStatus {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	st, err := p.Wait(ctx)
	if err != nil {
		s.t.Fatalf("pid %d did not exit: %v", p.Pid(), err)
	}
	return st
}

// oomLimit is the memory limit under which the suite's hog is OOM-killed.
const oomLimit = 32 << 20

// oomKill limits c's memory, execs a memory hog (returned) held before it
// allocates, and has the OOM killer kill the init (init) or the hog. before,
// if not nil, is called with the hog before anything is killed.
func (s *suite) oomKill(c runtime.Container, init bool, before func(hog runtime.Process)) runtime.Process {
	s.t.Helper()
	mem := int64(oomLimit)
	if err := c.Update(runtime.Resources{Memory: &mem}); err != nil {
		s.t.Fatalf("limit memory: %v", err)
	}
	held, release, err := os.Pipe()
	if err != nil {
		s.t.Fatal(err)
	}
	defer release.Close()
	// The hog that is the victim grows its own memory. The one that is
	// not fills a tmpfs instead, memory charged to the container but
	// counted in no process's score: else it would hold about as much as
	// the limit, as much as oom_score_adj 1000 gives the init.
	script := "read go; a=0123456789; while true; do a=$a$a; done"
	if init {
		script = "read go; exec cat /dev/zero >/dev/shm/oom-hog"
	}
	hog, err := c.Exec(context.Background(), runtime.ProcessSpec{
		Args:  []string{"sh", "-c", script},
		Stdin: held,
	})
	held.Close()
	if err != nil {
		s.t.Fatalf("exec the memory hog: %v", err)
	}
	if before != nil {
		before(hog)
	}
	victim := hog
	if init {
		victim = c.Init()
	}
	if s.h.OOMKill != nil {
		s.h.OOMKill(s.t, c, victim)
		return hog
	}
	// 1000 adds about the whole limit to the victim's score. (Lowering
	// the hog's instead would need CAP_SYS_RESOURCE, which a test's root
	// may lack.)
	s.oomScoreAdj(victim, 1000)
	if _, err := release.WriteString("go\n"); err != nil {
		s.t.Fatalf("release the memory hog: %v", err)
	}
	return hog
}

// oomScoreAdj sets p's oom_score_adj: 1000 makes it the OOM killer's first
// choice.
func (s *suite) oomScoreAdj(p runtime.Process, adj int) {
	s.t.Helper()
	path := "/proc/" + strconv.Itoa(p.Pid()) + "/oom_score_adj"
	if err := os.WriteFile(path, []byte(strconv.Itoa(adj)), 0o644); err != nil {
		s.t.Fatalf("oom_score_adj of pid %d: %v", p.Pid(), err)
	}
}

// wantEvents checks that events brings want, in order, each within the
// harness's timeout.
// nextEvent is the next event, within the harness's timeout.
func (s *suite) nextEvent(events <-chan string) string {
	s.t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(s.h.Timeout):
		s.t.Fatalf("no event within %v", s.h.Timeout)
		return ""
	}
}

func (s *suite) wantEvents(events <-chan string, want ...string) {
	s.t.Helper()
	for i, w := range want {
		select {
		case got := <-events:
			if got != w {
				s.t.Fatalf("event %d = %q, want %q (all: %q)", i, got, w, want)
			}
		case <-time.After(s.h.Timeout):
			s.t.Fatalf("event %d (%q of %q) did not come within %v", i, w, want, s.h.Timeout)
		}
	}
}

func (s *suite) wantStatus(c runtime.Container, want runtime.Status) {
	s.t.Helper()
	if got, err := c.Status(); err != nil || got != want {
		s.t.Errorf("status = %s, %v; want %s", got, err, want)
	}
}
