package linux

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/procstat"
)

// leaderExitEnv set makes this test binary a process whose main thread
// exits while another thread lives on (TestMain): what /proc shows of an
// init in the middle of an execve from another thread.
const leaderExitEnv = "TROUPE_TEST_LEADER_EXIT"

// exitLeader ends the calling thread, the main one (Init locked the main
// goroutine to it), and leaves the process to a goroutine that sleeps.
func exitLeader() {
	go func() {
		time.Sleep(time.Minute)
		os.Exit(0)
	}()
	time.Sleep(10 * time.Millisecond) // the sleeper is on a thread of its own
	_, _, _ = unix.Syscall(unix.SYS_EXIT, 0, 0, 0)
}

func TestGroupExitedAndAllExiting(t *testing.T) {
	start := func(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
		t.Helper()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	check := func(t *testing.T, pid int, wantExited, wantExiting bool) {
		t.Helper()
		if exited, err := groupExited(pid); err != nil || exited != wantExited {
			t.Errorf("groupExited(%d) = %v, %v; want %v", pid, exited, err, wantExited)
		}
		if exiting := allExiting(pid); exiting != wantExiting {
			t.Errorf("allExiting(%d) = %v, want %v", pid, exiting, wantExiting)
		}
	}

	t.Run("live", func(t *testing.T) {
		cmd := start(t, exec.Command("sleep", "60"))
		check(t, cmd.Process.Pid, false, false)
	})

	t.Run("main thread gone, another alive", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), leaderExitEnv+"=1")
		pid := start(t, cmd).Process.Pid
		testutil.Eventually(t, "the main thread to be a zombie", func() bool {
			st, err := procstat.Read(pid)
			return err == nil && st.Gone()
		})
		// libcontainer takes this for a stopped init.
		check(t, pid, false, false)
	})

	t.Run("exited, not reaped", func(t *testing.T) {
		cmd := start(t, exec.Command("sleep", "60"))
		pid := cmd.Process.Pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "a zombie", func() bool {
			st, err := procstat.Read(pid)
			return err == nil && st.Gone()
		})
		check(t, pid, true, true)
	})

	t.Run("reaped", func(t *testing.T) {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		check(t, cmd.Process.Pid, true, false)
	})
}
