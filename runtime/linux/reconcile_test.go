package linux

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// halfMade leaves what a start cut short by a crash leaves: libcontainer's
// state dir without its state (troupe's record, the exec fifo), a cgroup in
// every hierarchy with a process in it, and a log. It returns that process.
func (e *env) halfMade(name string) *exec.Cmd {
	e.t.Helper()
	dir := filepath.Join(e.rt.stateRoot, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := writeMeta(e.rt.stateRoot, name, meta{LogPath: filepath.Join(e.rt.logRoot, name+".log")}); err != nil {
		e.t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "exec.fifo"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.rt.logRoot, name+".log"), []byte("half\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return e.strayCgroup(name)
}

// strayCgroup makes cgroup <parent>/name in every hierarchy with a process
// in it, and returns that process.
func (e *env) strayCgroup(name string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	for _, h := range hierarchies {
		d := filepath.Join(h, e.parent, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			continue // not a hierarchy (a symlink such as cpu,cpuacct's)
		}
		_ = os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0)
	}
	if len(cgroupDirs(e.t, filepath.Join(e.parent, name))) == 0 {
		e.t.Fatal("no cgroup made")
	}
	return cmd
}

func TestReconcileKeepsWhatIsTrueAndRemovesTheRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	running := e.start("running", busybox.Options{Args: []string{"sleep", "300"}})
	stopped := e.start("stopped", busybox.Options{Args: []string{"true"}})
	wait(t, stopped.Init())
	// An init waiting to exec the bundle's process: the daemon died between
	// libcontainer's Start and Exec.
	created, err := e.rt.prepare(ctx, "created", e.bundle("created", busybox.Options{Args: []string{"sleep", "300"}}))
	if err != nil {
		t.Fatal(err)
	}
	createdInit := created.Init().Pid()
	half := e.halfMade("half")
	stray := e.strayCgroup("+warm-0123456789abcdef")
	if err := os.WriteFile(filepath.Join(e.rt.logRoot, "ghost.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	rec, err := e.rt.Reconcile(ctx)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if want := []string{"created", "half"}; !slices.Equal(rec.Destroyed, want) {
		t.Errorf("destroyed %v, want %v", rec.Destroyed, want)
	}
	if want := []string{e.parent + "/+warm-0123456789abcdef"}; !slices.Equal(rec.Cgroups, want) {
		t.Errorf("stray cgroups removed %v, want %v", rec.Cgroups, want)
	}
	if want := []string{"ghost.log"}; !slices.Equal(rec.Logs, want) {
		t.Errorf("stray logs removed %v, want %v", rec.Logs, want)
	}

	// What was half-made is gone, every trace of it.
	for _, id := range []string{"created", "half"} {
		e.assertGone(id, filepath.Join(e.rt.logRoot, id+".log"))
	}
	if dirs := cgroupDirs(t, filepath.Join(e.parent, "+warm-0123456789abcdef")); len(dirs) > 0 {
		t.Errorf("stray cgroup dirs left: %v", dirs)
	}
	testutil.Eventually(t, "the half-made processes to die", func() bool {
		return linuxtest.Gone(half.Process.Pid) && linuxtest.Gone(stray.Process.Pid) && linuxtest.Gone(createdInit)
	})
	if ids, _ := e.rt.List(ctx); !slices.Equal(ids, []string{"running", "stopped"}) {
		t.Errorf("after reconcile the runtime lists %v", ids)
	}

	// What was true stays true.
	if s, _ := running.Status(); s != runtime.Running {
		t.Errorf("the running container is %s", s)
	}
	if st, out := e.exec(running, "echo", "ok"); st.Code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("exec in the running container: %v %q", st, out)
	}
	if c, err := e.rt.Load(ctx, "stopped"); err != nil {
		t.Errorf("the stopped container: %v", err)
	} else if s, _ := c.Status(); s != runtime.Stopped {
		t.Errorf("the stopped container is %s", s)
	}
	if _, err := os.Stat(stopped.LogPath()); err != nil {
		t.Errorf("the stopped container's log: %v", err)
	}

	// The ids of what was destroyed are free again.
	for _, id := range []string{"created", "half"} {
		c := e.start(id, busybox.Options{Args: []string{"sleep", "300"}})
		if s, _ := c.Status(); s != runtime.Running {
			t.Errorf("%s started again is %s", id, s)
		}
	}
}
