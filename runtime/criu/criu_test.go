package criu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/procstat"
)

// installedCriu is make criu's CRIU, or the test is skipped (failed under
// make test, which installs one first).
func installedCriu(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("CRIU needs root")
	}
	prefix := os.Getenv("CRIU_PREFIX")
	if prefix == "" {
		prefix = "/opt/troupe/criu"
	}
	path := filepath.Join(prefix, "bin", "criu")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("TROUPE_REQUIRE_CRIU") != "" {
			t.Fatalf("no CRIU at %s: run make criu", path)
		}
		t.Skipf("no CRIU at %s (make criu installs one)", path)
	}
	return path
}

// fakeCriu writes a criu that tells its version and then, for anything
// else, hangs in a child of its own (as a CRIU hung in a helper would): the
// pid of that child goes to pidFile.
func fakeCriu(t *testing.T) (path, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "criu")
	pidFile = filepath.Join(dir, "hung.pid")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = --version ]; then echo 'Version: 9.9.9'; exit 0; fi\n" +
		"sleep 1000 & echo $! > " + pidFile + "\n" +
		"wait\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, pidFile
}

// alive says whether pid runs (a zombie does not count).
func alive(pid int) bool {
	st, err := procstat.Read(pid)
	return err == nil && !st.Gone()
}

func TestSelfTestPassesWithInstalledCriu(t *testing.T) {
	path := installedCriu(t)
	t0 := time.Now()
	version, err := SelfTest(context.Background(), path, DefaultSelfTestTimeout)
	if err != nil {
		t.Fatalf("self-test of %s: %v", path, err)
	}
	t.Logf("CRIU %s passed in %s", version, time.Since(t0).Round(time.Millisecond))
	if version == "" {
		t.Error("no version")
	}
}

func TestSelfTestOfHangingCriuEndsOnTime(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the self-test needs root")
	}
	path, pidFile := fakeCriu(t)
	t0 := time.Now()
	version, err := SelfTest(context.Background(), path, 2*time.Second)
	took := time.Since(t0)
	if err == nil {
		t.Fatal("a criu that never answers passed")
	}
	if want := "CRIU 9.9.9 did not finish a test dump within 2s"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if version != "9.9.9" {
		t.Errorf("version %q", version)
	}
	if took > 4*time.Second {
		t.Errorf("took %s with a 2s deadline", took)
	}
	data, _ := os.ReadFile(pidFile)
	hung, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if hung == 0 {
		t.Fatal("the fake criu's child never ran")
	}
	testutil.Eventually(t, "the hung criu's child to die", func() bool { return !alive(hung) })
}

func TestSelfTestOfMissingCriu(t *testing.T) {
	_, err := SelfTest(context.Background(), filepath.Join(t.TempDir(), "criu"), time.Second)
	if err == nil || !strings.Contains(err.Error(), "--version") {
		t.Errorf("error %v", err)
	}
}

func TestBoundKillsWhatTheCallStarted(t *testing.T) {
	// A process that another goroutine started, on any thread, survives.
	bystander := exec.Command("sleep", "1000")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	var started *exec.Cmd
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := Bound(ctx, func() error {
		started = exec.Command("sh", "-c", "sleep 1000 & echo $! > "+pidFile+"; wait")
		return started.Run()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Bound returned %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), "CRIU did not finish within") {
		t.Errorf("error %q does not say what timed out", err)
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("Bound took %s with a 300 ms deadline", took)
	}
	data, _ := os.ReadFile(pidFile)
	grandchild, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if grandchild == 0 {
		t.Fatal("the call's grandchild never ran")
	}
	testutil.Eventually(t, "the call's grandchild to die", func() bool { return !alive(grandchild) })
	if alive(started.Process.Pid) {
		t.Error("the call's child still runs")
	}
	if !alive(bystander.Process.Pid) {
		t.Error("Bound killed a process the call did not start")
	}
}

func TestBoundReturnsTheCallsResult(t *testing.T) {
	boom := errors.New("boom")
	if err := Bound(context.Background(), func() error { return boom }); err != boom {
		t.Errorf("Bound returned %v", err)
	}
	if err := Bound(context.Background(), func() error { return nil }); err != nil {
		t.Errorf("Bound returned %v", err)
	}
}

func TestCheckerVerdicts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the self-test needs root")
	}
	hanging, _ := fakeCriu(t)
	cases := []struct {
		name, path   string
		status       string
		errSubstring string
	}{
		{"missing", filepath.Join(t.TempDir(), "criu"), Failed, "no criu"},
		{"misnamed", "/bin/true", Failed, "must be named criu"},
		{"hanging", hanging, Failed, "CRIU 9.9.9 did not finish a test dump within 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := os.Getenv("PATH")
			t.Cleanup(func() { os.Setenv("PATH", path) })
			c := Check(tc.path, time.Second)
			if err := c.Err(); !errors.Is(err, errclass.Unavailable) {
				t.Errorf("before the verdict: Err() = %v, want ErrUnavailable", err)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("no verdict within 5 s")
			}
			v := c.Verdict()
			if v.Status != tc.status || !strings.Contains(v.Error, tc.errSubstring) {
				t.Errorf("verdict %+v, want %s with %q", v, tc.status, tc.errSubstring)
			}
			if err := c.Err(); !errors.Is(err, errclass.Unavailable) || !strings.Contains(err.Error(), tc.errSubstring) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestCheckerPassesWithInstalledCriu(t *testing.T) {
	path := installedCriu(t)
	old := os.Getenv("PATH")
	t.Cleanup(func() { os.Setenv("PATH", old) })
	c := Check(path, DefaultSelfTestTimeout)
	select {
	case <-c.Done():
	case <-time.After(DefaultSelfTestTimeout + 5*time.Second):
		t.Fatal("no verdict")
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	v := c.Verdict()
	if v.Status != Passed || v.Version == "" || v.Took == "" {
		t.Errorf("verdict %+v", v)
	}
	if got, err := exec.LookPath("criu"); err != nil || got != path {
		t.Errorf("criu on PATH is %q (%v), want %s", got, err, path)
	}
}

func TestTimeoutGrowsWithMemory(t *testing.T) {
	for _, tc := range []struct {
		memory uint64
		want   time.Duration
	}{
		{0, 30 * time.Second},
		{512 << 20, 30 * time.Second},
		{1 << 30, 60 * time.Second},
		{5<<30 + 1, 180 * time.Second},
	} {
		if got := Timeout(30*time.Second, tc.memory); got != tc.want {
			t.Errorf("Timeout(30s, %d) = %s, want %s", tc.memory, got, tc.want)
		}
	}
}

func TestRemoveAllStaysOnItsFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	dir := filepath.Join(t.TempDir(), "images")
	yard := filepath.Join(dir, ".criu.cgyard.x", "h")
	if err := os.MkdirAll(yard, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pages-1.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mount := func() {
		t.Helper()
		if err := unix.Mount("yard", yard, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(yard, "cgroup.procs"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mount()
	t.Cleanup(func() { _ = unix.Unmount(yard, unix.MNT_DETACH) })
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		t.Fatal(err)
	}
	// Without the unmount, the walk stops at the other file system.
	if err := removeOnDevice(dir, st.Dev); err == nil || !strings.Contains(err.Error(), "another file system") {
		t.Errorf("removeOnDevice across a mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(yard, "cgroup.procs")); err != nil {
		t.Errorf("the walk went into the mounted file system: %v", err)
	}
	// RemoveAll unmounts first.
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Errorf("RemoveAll of nothing: %v", err)
	}
}

func TestStartTicksIsNow(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	before := bootTicks()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	started, ok := startTicks(cmd.Process.Pid)
	after := bootTicks()
	if !ok || started+1 < before || started > after+1 {
		t.Errorf("a child started at tick %d (%v), between %d and %d", started, ok, before, after)
	}
	if self, ok := startTicks(1); !ok || self > before {
		t.Errorf("init started at tick %d (%v), after %d", self, ok, before)
	}
}
