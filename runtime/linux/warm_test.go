package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

func (e *env) prepare(bundlePath string) runtime.Prepared {
	e.t.Helper()
	p, err := e.rt.Prepare(context.Background(), bundlePath)
	if err != nil {
		e.t.Fatalf("prepare: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = p.Discard(ctx)
	})
	return p
}

// nextDaemon is the runtime a daemon starting on the same state dir makes,
// after its sweep of unclaimed prepared containers.
func (e *env) nextDaemon() *Runtime {
	e.t.Helper()
	rt, err := New(Options{StateDir: filepath.Join(e.dir, "state"), CgroupParent: e.parent})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rt.Close() })
	if err := rt.RemovePrepared(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return rt
}

// preparedDirs returns the state dirs of prepared containers, claimed or not.
func (e *env) preparedDirs() []string {
	e.t.Helper()
	m, err := filepath.Glob(filepath.Join(e.rt.stateRoot, preparedPrefix+"*"))
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func TestPrepareClaim(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("warm", busybox.Options{Args: []string{"sh", "-c", "echo warm up; exec sleep 3600"}})
	p := e.prepare(b)
	if ids, _ := e.rt.List(context.Background()); len(ids) != 0 {
		t.Errorf("a prepared container is listed: %v", ids)
	}
	// The init waits: nothing of the bundle's process has run yet.
	dirs := e.preparedDirs()
	if len(dirs) != 1 {
		t.Fatalf("prepared state dirs = %v", dirs)
	}
	// It is still libcontainer's init, blocked before its exec of the
	// bundle's process (busybox), rather than given time to run it.
	pid := p.(*prepared).c.init.pid
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || strings.Contains(exe, "busybox") {
		t.Errorf("prepared init runs %q (%v), not libcontainer's init", exe, err)
	}
	if log, _ := os.ReadFile(filepath.Join(e.rt.logRoot, filepath.Base(dirs[0])+".log")); len(log) != 0 {
		t.Errorf("prepared init already ran: %q", log)
	}

	c, err := p.Claim(context.Background(), "claimed", runtime.ClaimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() != "claimed" || c.BundlePath() != b {
		t.Errorf("claimed container %q from %q", c.ID(), c.BundlePath())
	}
	if s, _ := c.Status(); s != runtime.Running {
		t.Errorf("status after claim = %s", s)
	}
	testutil.Eventually(t, "the init's output", func() bool { return strings.Contains(readLog(t, c), "warm up") })
	if st, out := e.exec(c, "echo", "hi"); st.Code != 0 || out != "hi\n" {
		t.Errorf("exec in a claimed container: %v %q", st, out)
	}
	if ids, _ := e.rt.List(context.Background()); !slices.Equal(ids, []string{"claimed"}) {
		t.Errorf("list = %v", ids)
	}
	// Used once only; Discard after a claim leaves the container alone.
	if _, err := p.Claim(context.Background(), "again", runtime.ClaimOptions{}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("second claim: %v", err)
	}
	if err := p.Discard(context.Background()); err != nil {
		t.Errorf("discard after claim: %v", err)
	}

	// A restarted daemon finds it under its id and can delete it.
	rt2 := e.nextDaemon()
	loaded, err := rt2.Load(context.Background(), "claimed")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Init().Pid() != c.Init().Pid() {
		t.Errorf("loaded init %d, want %d", loaded.Init().Pid(), c.Init().Pid())
	}
	if err := loaded.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	wait(t, c.Init())
	if _, err := os.Lstat(filepath.Join(e.rt.stateRoot, "claimed")); !os.IsNotExist(err) {
		t.Errorf("the id's symlink is left: %v", err)
	}
	if d := e.preparedDirs(); len(d) != 0 {
		t.Errorf("state dirs left: %v", d)
	}
	if d := cgroupDirs(t, filepath.Join(e.parent, filepath.Base(dirs[0]))); len(d) != 0 {
		t.Errorf("cgroups left: %v", d)
	}
	if _, err := os.Stat(c.LogPath()); !os.IsNotExist(err) {
		t.Errorf("log left: %v", err)
	}
}

func TestPrepareClaimTakenID(t *testing.T) {
	e := newEnv(t)
	e.start("taken", busybox.Options{})
	p := e.prepare(e.bundle("warm", busybox.Options{}))
	if _, err := p.Claim(context.Background(), "taken", runtime.ClaimOptions{}); !errors.Is(err, errclass.AlreadyExists) {
		t.Fatalf("claim of a taken id: %v", err)
	}
	if _, err := p.Claim(context.Background(), "bad/id", runtime.ClaimOptions{}); !errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("claim of a bad id: %v", err)
	}
	// Still intact: it can be claimed under a free id.
	c, err := p.Claim(context.Background(), "free", runtime.ClaimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

func TestPreparedDiscardStaleAndSweep(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("warm", busybox.Options{})
	p1, p2 := e.prepare(b), e.prepare(b)
	if p1.Stale() {
		t.Error("fresh prepared container is stale")
	}
	// Any change of config.json makes it stale.
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(filepath.Join(b, "config.json"), now, now); err != nil {
		t.Fatal(err)
	}
	if !p1.Stale() {
		t.Error("prepared container not stale after config.json changed")
	}
	pid := func(p runtime.Prepared) int { return p.(*prepared).c.Init().Pid() }
	first := pid(p1)
	if err := p1.Discard(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscallKill0(first); err == nil {
		t.Errorf("init %d of a discarded container still runs", first)
	}
	// An unclaimed one is swept by the next daemon.
	second := pid(p2)
	e.nextDaemon()
	wait(t, p2.(*prepared).c.Init())
	if err := syscallKill0(second); err == nil {
		t.Errorf("init %d of a swept container still runs", second)
	}
	if d := e.preparedDirs(); len(d) != 0 {
		t.Errorf("state dirs left: %v", d)
	}
	if d, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.parent, preparedPrefix+"*")); len(d) != 0 {
		t.Errorf("cgroups left: %v", d)
	}
}

func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }

// A claim may name the host: in the container's UTS namespace only, before
// its process starts.
func TestPrepareClaimHostname(t *testing.T) {
	e := newEnv(t)
	own, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	p := e.prepare(e.bundle("warm", busybox.Options{Args: []string{"sh", "-c", "hostname; exec sleep 3600"}}))
	if _, err := p.Claim(context.Background(), "named", runtime.ClaimOptions{Hostname: strings.Repeat("h", 65)}); !errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("claim with a 65-byte hostname: %v", err)
	}
	c, err := p.Claim(context.Background(), "named", runtime.ClaimOptions{Hostname: "named-by-claim"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
	// The init's first words are the name: it was set before it ran.
	testutil.Eventually(t, "the init's output", func() bool { return readLog(t, c) != "" })
	if log := readLog(t, c); log != "named-by-claim\n" {
		t.Errorf("the container's process saw hostname %q", log)
	}
	if st, out := e.exec(c, "hostname"); st.Code != 0 || out != "named-by-claim\n" {
		t.Errorf("exec hostname: %v %q", st, out)
	}
	if now, _ := os.Hostname(); now != own {
		t.Errorf("the daemon's hostname changed: %q, was %q", now, own)
	}
}
