package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// hangingCriu is a fake criu that hangs (linuxtest.FakeCriu).
type hangingCriu struct {
	name, script string
	// seizes says that the fake hangs after CRIU froze and seized the
	// container's tasks, as CRIU 4.1.1 did on kernel 6.18.
	seizes bool
}

var hangingCrius = []hangingCriu{
	{name: "silent", script: linuxtest.SilentCriu},
	{name: "midway", script: linuxtest.MidwayCriu, seizes: true},
}

// install puts the fake first on PATH, where libcontainer looks for criu,
// and returns its directory.
func (h hangingCriu) install(t *testing.T) (dir string) {
	t.Helper()
	_, dir = linuxtest.FakeCriu(t, h.script)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// procStatus returns the fields of /proc/pid/status.
func procStatus(pid int) map[string]string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// mountsUnder lists the mount points below dir in this thread's mount
// namespace (the process's main thread may be elsewhere: libcontainer
// leaves a thread it moved into a container's namespace locked).
func mountsUnder(dir string) []string {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	data, _ := os.ReadFile("/proc/thread-self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// testCriuTimeout is the deadline of a dump or restore in these tests.
const testCriuTimeout = 6 * time.Second

func TestCheckpointDeadlineLeavesTheContainerAsItWas(t *testing.T) {
	linuxtest.RequireCriu(t)
	for _, h := range hangingCrius {
		t.Run(h.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.start("orig", busybox.Options{Args: counterArgs})
			testutil.Eventually(t, "the counter to pass 3", func() bool { return readCount(t, c) > 3 })
			dir := h.install(t)
			// Short only for the hanging CRIU: a real one on a loaded
			// machine may take longer than the test's deadline.
			c.(*container).criuTimeout = testCriuTimeout
			images := filepath.Join(e.dir, "cp")
			if err := os.Mkdir(images, 0o700); err != nil {
				t.Fatal(err)
			}

			t0 := time.Now()
			done := make(chan error, 1)
			go func() { done <- c.Checkpoint(context.Background(), images, runtime.CheckpointOptions{}) }()
			if h.seizes {
				// The hang this fake stands for: the tasks are CRIU's.
				testutil.Eventually(t, "CRIU to hang", func() bool { return linuxtest.HungPid(dir) != 0 })
				if st := procStatus(c.Init().Pid()); st["TracerPid"] == "0" {
					t.Errorf("while CRIU hangs the init is not traced: %v", st)
				}
			}
			err := <-done
			took := time.Since(t0)
			if err == nil {
				t.Fatal("a checkpoint with a hanging CRIU succeeded")
			}
			t.Logf("checkpoint answered after %s: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CRIU did not finish within "+testCriuTimeout.String()) {
				t.Errorf("error %q does not say that CRIU timed out", err)
			}
			if took > testCriuTimeout+3*time.Second {
				t.Errorf("the checkpoint took %s with a %s deadline", took, testCriuTimeout)
			}
			hung := linuxtest.HungPid(dir)
			if hung == 0 {
				t.Fatal("the fake CRIU never got to its hang")
			}
			testutil.Eventually(t, "the hung CRIU process to die", func() bool { return linuxtest.Gone(hung) })

			if m := mountsUnder(images); len(m) > 0 {
				t.Errorf("the killed CRIU left mounts: %v", m)
			}
			if s, err := c.Status(); err != nil || s != runtime.Running {
				t.Errorf("after the timeout the container is %s (%v), want running", s, err)
			}
			pids, err := c.Processes()
			if err != nil {
				t.Fatal(err)
			}
			for _, pid := range pids {
				st := procStatus(pid)
				if st == nil {
					continue // exited meanwhile (the counter's usleep)
				}
				if st["TracerPid"] != "0" || strings.HasPrefix(st["State"], "t") || strings.HasPrefix(st["State"], "T") {
					t.Errorf("pid %d of the container: state %q, tracer %q", pid, st["State"], st["TracerPid"])
				}
			}
			n := readCount(t, c)
			testutil.Eventually(t, "the counter to go on", func() bool { return readCount(t, c) > n+2 })
			if st, out := e.exec(c, "echo", "alive"); st.Code != 0 || strings.TrimSpace(out) != "alive" {
				t.Errorf("exec after the timeout: %v, %q", st, out)
			}
			// The container can still be checkpointed for real.
			os.Setenv("PATH", strings.TrimPrefix(os.Getenv("PATH"), dir+string(os.PathListSeparator)))
			c.(*container).criuTimeout = DefaultCriuTimeout
			again := filepath.Join(e.dir, "cp-again")
			if err := os.Mkdir(again, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.Checkpoint(context.Background(), again, runtime.CheckpointOptions{}); err != nil {
				t.Errorf("a checkpoint with the real CRIU afterwards: %v", err)
			}
		})
	}
}

func TestRestoreDeadlineLeavesNothing(t *testing.T) {
	linuxtest.RequireCriu(t)
	for _, h := range hangingCrius {
		t.Run(h.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.start("orig", busybox.Options{Args: counterArgs})
			testutil.Eventually(t, "the counter to pass 3", func() bool { return readCount(t, c) > 3 })
			images := filepath.Join(e.dir, "cp")
			if err := os.Mkdir(images, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.Checkpoint(context.Background(), images, runtime.CheckpointOptions{}); err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
			dir := h.install(t)
			e.rt.criuTimeout = testCriuTimeout

			t0 := time.Now()
			type started struct {
				c   runtime.Container
				err error
			}
			done := make(chan started, 1)
			go func() {
				c, err := e.rt.Start(context.Background(), "clone", runtime.StartOptions{
					BundlePath: filepath.Join(e.dir, "bundles", "orig"), Restore: &runtime.RestoreOptions{ImagesDir: images}})
				done <- started{c, err}
			}()
			if h.seizes {
				// The hang this fake stands for: CRIU (in the clone's cgroup)
				// and the restored tasks, not yet resumed.
				testutil.Eventually(t, "CRIU to hang", func() bool { return linuxtest.HungPid(dir) != 0 })
				procs, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", e.parent, "clone", "cgroup.procs"))
				if n := len(strings.Fields(string(procs))); n < 2 {
					t.Errorf("while CRIU hangs the clone's cgroup holds %d processes, want CRIU and the restored ones", n)
				}
			}
			r := <-done
			clone, err := r.c, r.err
			took := time.Since(t0)
			if err == nil {
				_ = clone.Delete(context.Background(), true)
				t.Fatal("a restore with a hanging CRIU succeeded")
			}
			t.Logf("restore answered after %s: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %q does not say that CRIU timed out", err)
			}
			if took > testCriuTimeout+3*time.Second {
				t.Errorf("the restore took %s with a %s deadline", took, testCriuTimeout)
			}
			if hung := linuxtest.HungPid(dir); hung != 0 {
				testutil.Eventually(t, "the hung CRIU process to die", func() bool { return linuxtest.Gone(hung) })
			}
			e.assertGone("clone", filepath.Join(e.dir, "state", "logs", "clone.log"))
			if m := mountsUnder(images); len(m) > 0 {
				t.Errorf("the killed CRIU left mounts: %v", m)
			}
			if _, err := e.rt.Load(context.Background(), "clone"); !errors.Is(err, errclass.NotFound) {
				t.Errorf("after the failed restore, Load says %v", err)
			}
			// The original never noticed.
			if s, _ := c.Status(); s != runtime.Running {
				t.Errorf("the original is %s", s)
			}
		})
	}
}
