package linux

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// guardChildEnv names the file where TestGuardChild reports what it
// started; unset, that test skips.
const guardChildEnv = "TROUPE_TEST_GUARD_CHILD"

// guardReport is what TestGuardChild started.
type guardReport struct {
	RunDir, Dir, Parent string
	Init, Daemon        proc
}

// proc is a process by pid and start time.
type proc struct {
	Pid   int
	Start uint64
}

func procOf(pid int) proc {
	start, _ := linuxtest.StartTime(pid)
	return proc{pid, start}
}

func (p proc) alive() bool {
	start, ok := linuxtest.StartTime(p.Pid)
	return ok && start == p.Start
}

// TestGuardChild is TestGuardSweeps' child: run alone in a test binary of
// its own, it starts a container and a stand-in for a daemon, reports them,
// and blocks until go test's -timeout panics the binary or a SIGKILL ends
// it. None of its cleanups runs.
func TestGuardChild(t *testing.T) {
	report := os.Getenv(guardChildEnv)
	if report == "" {
		t.Skip("only as the child of TestGuardSweeps")
	}
	e := newEnv(t)
	c := e.start("left", busybox.Options{Args: []string{"sleep", "3600"}})
	daemon := exec.Command("sleep", "3600")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(daemon.Process.Pid)
	data, err := json.Marshal(guardReport{RunDir: os.TempDir(), Dir: e.dir, Parent: e.parent,
		Init: procOf(c.Init().Pid()), Daemon: procOf(daemon.Process.Pid)})
	if err == nil {
		err = os.WriteFile(report+".tmp", data, 0o644)
	}
	if err == nil {
		err = os.Rename(report+".tmp", report)
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
}

// TestGuardSweeps runs the test binary with TestGuardChild alone, lets go
// test's -timeout panic it (or kills it), and checks that its guard removed
// everything it left: the container's processes and cgroups in every
// hierarchy, the daemon, the state and temporary directories.
func TestGuardSweeps(t *testing.T) {
	linuxtest.RequireRoot(t) // the guard runs only as root
	for _, tc := range []struct {
		name string
		kill bool
	}{{"timeout", false}, {"kill", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, err := os.Create(filepath.Join(dir, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			output := func() string { data, _ := os.ReadFile(out.Name()); return string(data) }
			report := filepath.Join(dir, "report.json")
			guardLog := filepath.Join(dir, "guard.log")
			cmd := exec.Command(os.Args[0], "-test.run", "^TestGuardChild$", "-test.timeout", "8s")
			cmd.Env = append(os.Environ(), guardChildEnv+"="+report, linuxtest.GuardLogEnv+"="+guardLog)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})

			var r guardReport
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if data, err := os.ReadFile(report); err == nil {
					if err := json.Unmarshal(data, &r); err != nil {
						t.Fatal(err)
					}
					break
				}
				select {
				case err := <-exited:
					exited <- err
					t.Fatalf("the child ended (%v) without a report; its output:\n%s", err, output())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the child reported nothing within 30s; its output:\n%s", output())
				}
			}
			// Should the guard fail, what the child left goes with this
			// test all the same.
			linuxtest.TrackCgroup(r.Parent)
			linuxtest.TrackProcess(r.Daemon.Pid)
			t.Cleanup(func() {
				for _, p := range []proc{r.Init, r.Daemon} {
					if p.alive() {
						_ = syscall.Kill(p.Pid, syscall.SIGKILL)
					}
				}
				_, _ = linuxtest.KillCgroup(r.Parent)
				linuxtest.RemoveCgroup(r.Parent)
				os.RemoveAll(r.RunDir)
			})
			if !r.Init.alive() || !r.Daemon.alive() {
				t.Fatalf("the child's container init or daemon is not running: %+v", r)
			}

			if tc.kill {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				var exit *exec.ExitError
				switch {
				case !errors.As(err, &exit):
					t.Fatalf("the child ended with %v; its output:\n%s", err, output())
				case tc.kill && exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL:
					t.Fatalf("the child ended with %v, want killed; its output:\n%s", err, output())
				case !tc.kill && !strings.Contains(output(), "panic: test timed out after 8s"):
					t.Fatalf("the child ended with %v, want go test's timeout; its output:\n%s", err, output())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the child did not end within 30s; its output:\n%s", output())
			}

			gone := func() []string {
				var left []string
				if r.Init.alive() {
					left = append(left, "the container's init")
				}
				if r.Daemon.alive() {
					left = append(left, "the daemon")
				}
				if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", r.Parent)); len(dirs) > 0 {
					left = append(left, strings.Join(dirs, " "))
				}
				for _, d := range []string{r.Dir, r.RunDir} {
					if _, err := os.Lstat(d); err == nil {
						left = append(left, d)
					}
				}
				return left
			}
			start := time.Now()
			for deadline := start.Add(15 * time.Second); len(gone()) > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					log, _ := os.ReadFile(guardLog)
					t.Fatalf("15s after the child ended, left: %v\nthe guard's log:\n%s", gone(), log)
				}
			}
			t.Logf("all gone %v after the child ended", time.Since(start).Round(time.Millisecond))
			// The guard logs once it is done.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				log, _ := os.ReadFile(guardLog)
				if strings.Contains(string(log), "cgroup "+r.Parent+": killed") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the guard's log does not say it swept %s:\n%s", r.Parent, log)
				}
			}
		})
	}
}
