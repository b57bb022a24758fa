package runtimetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime"
)

// Env is what one case runs on.
type Env struct {
	// Runtime is a runtime with no container, for this case alone.
	Runtime runtime.Runtime
	// Bundle is an absolute bundle path whose init runs until it is
	// killed, in a root that has sh and sleep.
	Bundle string
	// BadBundle is an absolute bundle path that Start refuses with
	// runtime.ErrInvalidArgument (no config.json, or listed as bad).
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
		if err := c.Signal(p.Pid(), syscall.SIGTERM); !errors.Is(err, runtime.ErrNotFound) {
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
		if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); !errors.Is(err, runtime.ErrNotFound) {
			s.t.Errorf("signal to the exited init: %v, want not found", err)
		}
		if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, runtime.ErrFailedPrecondition) {
			s.t.Errorf("exec into a stopped container: %v, want failed precondition", err)
		}
		mem := int64(64 << 20)
		if err := c.Update(runtime.Resources{Memory: &mem}); !errors.Is(err, runtime.ErrFailedPrecondition) {
			s.t.Errorf("update of a stopped container: %v, want failed precondition", err)
		}
		if err := c.Pause(); !errors.Is(err, runtime.ErrFailedPrecondition) {
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
		if err := c.Pause(); !errors.Is(err, runtime.ErrFailedPrecondition) {
			s.t.Errorf("pause of a paused container: %v, want failed precondition", err)
		}
		if _, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"true"}}); !errors.Is(err, runtime.ErrFailedPrecondition) {
			s.t.Errorf("exec into a paused container: %v, want failed precondition", err)
		}
		if err := c.Resume(); err != nil {
			s.t.Fatal(err)
		}
		s.wantStatus(c, runtime.Running)
		if err := c.Resume(); !errors.Is(err, runtime.ErrFailedPrecondition) {
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
		if err := c.Update(runtime.Resources{Pids: &bad}); !errors.Is(err, runtime.ErrInvalidArgument) {
			s.t.Errorf("update to pids 0: %v, want invalid argument", err)
		}
	}},
	{"delete leaves List empty", func(s *suite) {
		c := s.start("del")
		ooms, err := c.NotifyOOM()
		if err != nil {
			s.t.Fatal(err)
		}
		if err := c.Delete(context.Background(), false); !errors.Is(err, runtime.ErrFailedPrecondition) {
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
		if _, err := s.Runtime.Load(context.Background(), "del"); !errors.Is(err, runtime.ErrNotFound) {
			s.t.Errorf("Load after delete: %v, want not found", err)
		}
		select {
		case <-c.Init().Done():
		default:
			s.t.Error("the init is not done after a forced delete")
		}
		select {
		case _, ok := <-ooms:
			if ok {
				s.t.Error("an OOM kill reported for a deleted container")
			}
		case <-time.After(s.h.Timeout):
			s.t.Error("the OOM channel is not closed after delete")
		}
		// Not checked: Stats after Delete. The fake fails with
		// ErrNotFound; package linux (cgroup v1) returns zeros.
		if err := c.Delete(context.Background(), false); err != nil {
			s.t.Errorf("delete of a deleted container: %v, want success", err)
		}
		// The id is free again.
		s.start("del")
	}},
	{"start of an existing id", func(s *suite) {
		c := s.start("dup")
		_, err := s.Runtime.Start(context.Background(), "dup", runtime.StartOptions{BundlePath: s.Bundle})
		if !errors.Is(err, runtime.ErrAlreadyExists) {
			s.t.Errorf("second start: %v, want already exists", err)
		}
		s.wantStatus(c, runtime.Running)
	}},
	{"load of an unknown id", func(s *suite) {
		if _, err := s.Runtime.Load(context.Background(), "nosuch"); !errors.Is(err, runtime.ErrNotFound) {
			s.t.Errorf("Load: %v, want not found", err)
		}
	}},
	{"invalid id", func(s *suite) {
		for _, id := range []string{"", "../x", "-x", "a/b"} {
			if _, err := s.Runtime.Start(context.Background(), id, runtime.StartOptions{BundlePath: s.Bundle}); !errors.Is(err, runtime.ErrInvalidArgument) {
				s.t.Errorf("Start %q: %v, want invalid argument", id, err)
			}
			if _, err := s.Runtime.Load(context.Background(), id); !errors.Is(err, runtime.ErrInvalidArgument) {
				s.t.Errorf("Load %q: %v, want invalid argument", id, err)
			}
		}
	}},
	{"bad bundle", func(s *suite) {
		for _, b := range []string{s.BadBundle, "relative/bundle"} {
			opts := runtime.StartOptions{BundlePath: b}
			if err := s.Runtime.Check(context.Background(), "bad", opts); !errors.Is(err, runtime.ErrInvalidArgument) {
				s.t.Errorf("Check with bundle %q: %v, want invalid argument", b, err)
			}
			if _, err := s.Runtime.Start(context.Background(), "bad", opts); !errors.Is(err, runtime.ErrInvalidArgument) {
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
		if err := c.Delete(ctx, true); err != nil && !errors.Is(err, runtime.ErrNotFound) {
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

func (s *suite) wantStatus(c runtime.Container, want runtime.Status) {
	s.t.Helper()
	if got, err := c.Status(); err != nil || got != want {
		s.t.Errorf("status = %s, %v; want %s", got, err, want)
	}
}
