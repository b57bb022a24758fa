package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestNewCompareTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{name: "crun"},
		{name: "runc"},
		{name: "containerd"},
		{name: "troupe", wantErr: true},
		{name: "", wantErr: true},
		{name: "RUNC", wantErr: true},
	} {
		t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
			target, err := NewCompareTarget(tc.name)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewCompareTarget(%q) = %v, want an error", tc.name, target)
				}
				if !errors.Is(err, errclass.InvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				for _, valid := range CompareTargetNames() {
					if !strings.Contains(err.Error(), valid) {
						t.Errorf("error %q does not name the valid target %q", err, valid)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := target.Name(); got != tc.name {
				t.Errorf("Name() = %q, want %q", got, tc.name)
			}
		})
	}
}

func TestCheckCLIID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"bench-000", true},
		{"a", true},
		{"A.b_c-9", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"", false},
		{"-rm", false},
		{".hidden", false},
		{"a/b", false},
		{"..", false},
		{"a b", false},
	} {
		err := checkCLIID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("checkCLIID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("checkCLIID(%q) = %v, not ErrInvalidArgument", tc.id, err)
		}
	}
}

// testBundle makes a busybox bundle (sleep 3600) with a shared read-only
// rootfs, as the benchmark does.
func testBundle(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	rootfs, err := busybox.Rootfs(filepath.Join(dir, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := busybox.Bundle(filepath.Join(dir, "bundle"), busybox.Options{Rootfs: rootfs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCLIConfig(t *testing.T) {
	b := testBundle(t)
	rootfs := filepath.Join(filepath.Dir(b), "rootfs")
	for _, tc := range []struct {
		name, version, wantVersion string
	}{
		{name: "bundle's version", wantVersion: specs.Version},
		{name: "crun's version", version: crunOCIVersion, wantVersion: crunOCIVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadCLIConfig(b, "/troupe-bench-x", tc.version)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cb, err := c.write(dir, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if cb != filepath.Join(dir, "c1") {
				t.Errorf("bundle dir %s, want %s", cb, filepath.Join(dir, "c1"))
			}
			data, err := os.ReadFile(filepath.Join(cb, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			if s.Linux.CgroupsPath != "/troupe-bench-x/c1" {
				t.Errorf("cgroupsPath %q, want /troupe-bench-x/c1", s.Linux.CgroupsPath)
			}
			if s.Root.Path != rootfs || !s.Root.Readonly {
				t.Errorf("root %+v, want the shared rootfs %s read-only", s.Root, rootfs)
			}
			if s.Version != tc.wantVersion {
				t.Errorf("ociVersion %q, want %q", s.Version, tc.wantVersion)
			}
			if got := strings.Join(s.Process.Args, " "); got != "sleep 3600" {
				t.Errorf("args %q, want sleep 3600", got)
			}
			// The shared spec is not changed: concurrent Starts read it.
			if c.spec.Linux.CgroupsPath != "" || c.spec.Version != specs.Version {
				t.Errorf("shared spec changed: cgroupsPath %q, version %q", c.spec.Linux.CgroupsPath, c.spec.Version)
			}
			if _, err := c.write(dir, "c1"); err == nil {
				t.Error("a second write of c1 succeeded, want an error")
			}
		})
	}
}

func TestCLIConfigConcurrentWrites(t *testing.T) {
	c, err := loadCLIConfig(testBundle(t), "/p", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			b, err := c.write(dir, id)
			if err != nil {
				t.Error(err)
				return
			}
			var s specs.Spec
			data, err := os.ReadFile(filepath.Join(b, "config.json"))
			if err == nil {
				err = json.Unmarshal(data, &s)
			}
			if err != nil {
				t.Error(err)
			} else if s.Linux.CgroupsPath != "/p/"+id {
				t.Errorf("%s: cgroupsPath %q", id, s.Linux.CgroupsPath)
			}
		})
	}
	wg.Wait()
}

func TestLoadCLIConfigRejectsBadBundle(t *testing.T) {
	if _, err := loadCLIConfig(t.TempDir(), "/p", ""); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("loadCLIConfig(empty dir) = %v, want ErrInvalidArgument", err)
	}
}

// BenchmarkCLIConfigWrite is the per-container preparation inside every
// timed CLI Start: a container's config.json written from the shared spec.
func BenchmarkCLIConfigWrite(b *testing.B) {
	c, err := loadCLIConfig(testBundle(b), "/troupe-bench-x", "")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		if _, err := c.write(dir, fmt.Sprintf("c%d", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestIDSet(t *testing.T) {
	var s idSet
	if !s.add("b") || !s.add("a") {
		t.Fatal("add of a new id said it was there")
	}
	if s.add("a") {
		t.Error("add of a known id said it was new")
	}
	got := strings.Join(s.take("c", "a"), ",")
	if got != "a,b,c" {
		t.Errorf("take = %s, want a,b,c", got)
	}
	if got := s.take(); len(got) != 0 {
		t.Errorf("take after take = %v, want nothing", got)
	}
}

func TestForEachBounded(t *testing.T) {
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	var inFlight, peak atomic.Int32
	err := forEachBounded(ids, 4, func(id string) error {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// Each call lasts a moment so that calls overlap: the overlap is
		// what the bound is tested on, not an ordering.
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		if id == "7" || id == "9" {
			return fmt.Errorf("failed %s", id)
		}
		return nil
	})
	if p := peak.Load(); p > 4 {
		t.Errorf("%d calls in flight, want at most 4", p)
	}
	if err == nil || len(splitJoined(err)) != 2 {
		t.Errorf("err = %v, want the two failures", err)
	}
}

func TestFirstErrors(t *testing.T) {
	var errs []error
	for i := range 8 {
		errs = append(errs, fmt.Errorf("e%d", i))
	}
	got := firstErrors(errs, 3).Error()
	if want := "e0\ne1\ne2\nand 5 more errors"; got != want {
		t.Errorf("firstErrors = %q, want %q", got, want)
	}
	if got := firstErrors(errs[:2], 3).Error(); got != "e0\ne1" {
		t.Errorf("firstErrors of two = %q", got)
	}
}

func TestCLIError(t *testing.T) {
	err := cliError([]string{"/usr/sbin/runc", "run", "c1"}, errors.New("exit status 1"), []byte("  boom\n"))
	if got, want := err.Error(), "runc run c1: exit status 1: boom"; got != want {
		t.Errorf("cliError = %q, want %q", got, want)
	}
	err = cliError([]string{"/usr/sbin/runc"}, fmt.Errorf("fork/exec: %w", syscall.EAGAIN), nil)
	if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "pid_max") {
		t.Errorf("cliError of EAGAIN = %v", err)
	}
	long := strings.Repeat("x", 3*maxStderr)
	if got := cliError([]string{"a"}, errors.New("e"), []byte(long)).Error(); len(got) > maxStderr+40 {
		t.Errorf("error of %d bytes, want the output cut to %d", len(got), maxStderr)
	}
}

func TestRunCLIOutputInError(t *testing.T) {
	err := runCLI(context.Background(), nil, "sh", "-c", "echo to-stderr >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "to-stderr") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("runCLI = %v, want the exit status and stderr", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = runCLI(context.Background(), f, "sh", "-c", "echo in-file >&2; exit 4")
	if err == nil || !strings.Contains(err.Error(), "in-file") {
		t.Errorf("runCLI with a file = %v, want the file's tail", err)
	}
}

func TestRemoveCgroupTree(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{
		"memory/troupe-bench-x/a", "memory/troupe-bench-x/b/c", "pids/troupe-bench-x",
		"troupe-bench-x/d", "memory/other", "unified/troupe-bench-xy",
	} {
		mk(p)
	}
	if err := os.Symlink("memory", filepath.Join(root, "mem")); err != nil {
		t.Fatal(err)
	}
	if err := removeCgroupTree(context.Background(), root, "/troupe-bench-x"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"memory/troupe-bench-x", "pids/troupe-bench-x", "troupe-bench-x"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it gone", gone, err)
		}
	}
	for _, kept := range []string{"memory/other", "unified/troupe-bench-xy", "pids"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s: %v, want it kept", kept, err)
		}
	}
	// Nothing there is no error.
	if err := removeCgroupTree(context.Background(), root, "/troupe-bench-x"); err != nil {
		t.Error(err)
	}
}

func TestKillCgroupLeftovers(t *testing.T) {
	root := t.TempDir()
	if err := killCgroupLeftovers(root, "/troupe-bench-x"); err != nil {
		t.Errorf("nothing there: %v", err)
	}
	// A process of the test's own stands for a container the deletes
	// missed, listed in a child cgroup of the parent in two hierarchies.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill() })
	pid := fmt.Sprint(sleep.Process.Pid)
	for _, h := range []string{"pids", "memory"} {
		dir := filepath.Join(root, h, "troupe-bench-x", "c1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := killCgroupLeftovers(root, "/troupe-bench-x")
	if err == nil || !strings.Contains(err.Error(), "killed 1 processes") || !strings.Contains(err.Error(), pid) {
		t.Errorf("killCgroupLeftovers = %v, want it to name %s once", err, pid)
	}
	if err := sleep.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the leftover process ended with %v, want killed", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:         "/a/b",
		`/a\040b`:      "/a b",
		`/tab\011`:     "/tab\t",
		`/x\\y`:        `/x\\y`,
		`/short\04`:    `/short\04`,
		`/not\08octal`: `/not\08octal`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// compareTestHooks are what the integration test needs to see inside a
// target: its work dir, its cgroup parent (which it sets to one of its
// own) and any helper process (crun's mount namespace holder, containerd).
type compareTestHooks struct {
	dir       func() string
	setParent func(string)
	helperPid func() int
}

func hooksOf(t *testing.T, target Target) compareTestHooks {
	t.Helper()
	switch c := target.(type) {
	case *ociCLI:
		return compareTestHooks{
			dir:       func() string { return c.dir },
			setParent: func(p string) { c.cgroupParent = p },
			helperPid: func() int { return 0 },
		}
	case *crunTarget:
		return compareTestHooks{
			dir:       func() string { return c.dir },
			setParent: func(p string) { c.cgroupParent = p },
			helperPid: func() int {
				if c.helper == nil {
					return 0
				}
				return c.helper.Process.Pid
			},
		}
	case *containerdTarget:
		return compareTestHooks{
			dir:       func() string { return c.dir },
			setParent: func(p string) { c.cgroupParent = p },
			helperPid: func() int {
				if c.daemon == nil {
					return 0
				}
				return c.daemon.Process.Pid
			},
		}
	}
	t.Fatalf("unknown target type %T", target)
	return compareTestHooks{}
}

// TestMissingRuntimeInstallsNothing checks that a target whose runtime is
// missing fails its Setup with an error naming the Debian package and the
// command that installs it, and runs no installer: an apt-get first on PATH
// that records being run must not have been.
func TestMissingRuntimeInstallsNothing(t *testing.T) {
	bin := t.TempDir()
	ran := filepath.Join(t.TempDir(), "ran")
	for _, installer := range []string{"apt-get", "apt", "dpkg"} {
		script := "#!/bin/sh\necho \"$0 $*\" >>" + ran + "\n"
		if err := os.WriteFile(filepath.Join(bin, installer), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, tc := range []struct {
		pkg      string
		wantHow  string
		wantNone string
	}{
		{pkg: "crun", wantHow: "make bench-deps"},
		{pkg: "util-linux", wantHow: "hack/install-compare.sh util-linux", wantNone: "bench-deps"},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			c := newRunc()
			c.command = "troupe-bench-test-no-such-runtime"
			c.pkg = tc.pkg
			err := c.Setup(context.Background(), t.TempDir())
			if err == nil {
				c.Teardown(context.Background())
				t.Fatal("Setup with a missing runtime succeeded")
			}
			if !errors.Is(err, errclass.Unavailable) {
				t.Errorf("error %v is not ErrUnavailable", err)
			}
			for _, want := range []string{c.command, "Debian package " + tc.pkg, tc.wantHow} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if tc.wantNone != "" && strings.Contains(err.Error(), tc.wantNone) {
				t.Errorf("error %q says %q, which does not install %s", err, tc.wantNone, tc.pkg)
			}
		})
	}
	if data, err := os.ReadFile(ran); err == nil {
		t.Errorf("Setup ran an installer:\n%s", data)
	}
}

// requireCompareTarget skips the test unless it runs as root (starting
// containers needs it) and the runtime is installed: make bench-deps
// installs them (neither the tests nor the benchmark install anything, and
// make test does not pull three runtimes onto every machine).
func requireCompareTarget(t *testing.T, command, pkg string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting containers needs root")
	}
	if _, err := lookCommand(command); err != nil {
		t.Skipf("skipped, as %s is not installed (Debian package %s; sudo make bench-deps installs it)", command, pkg)
	}
}

// testIDs derives n container ids from the test's name.
func testIDs(t *testing.T, n int) []string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", name, i)
	}
	return ids
}

// cgroupPids reads the pids in a cgroup, from the pids hierarchy of a v1
// or hybrid host, or the unified one.
func cgroupPids(t *testing.T, cgroup string) []int {
	t.Helper()
	for _, dir := range []string{filepath.Join(cgroupRoot, "pids", cgroup), filepath.Join(cgroupRoot, cgroup)} {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			var pid int
			fmt.Sscan(f, &pid)
			pids = append(pids, pid)
		}
		return pids
	}
	t.Fatalf("cgroup %s not found", cgroup)
	return nil
}

// processGone reports whether pid has exited: no longer there, or a zombie
// (an orphaned container init waits for PID 1 to reap it, which is slow
// here and not ours to do).
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, ok := strings.Cut(string(data), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}

// waitGone waits up to 10 s in all for every pid to be gone, and names
// each one that is not.
func waitGone(t *testing.T, what string, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		if !testutil.Within(time.Until(deadline), func() bool { return processGone(pid) }) {
			t.Errorf("%s %d is still running after 10s", what, pid)
		}
	}
}

// processesMentioning returns the live processes whose command line holds
// s.
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(data), s) {
			continue
		}
		var pid int
		fmt.Sscan(e.Name(), &pid)
		if !processGone(pid) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	return found
}

// testCompareTarget starts three containers of the named target at once
// for real, checks that each runs the bundle's sleep in its own cgroup,
// tears them down and checks that nothing is left: no process, cgroup,
// mount or temporary directory.
func testCompareTarget(t *testing.T, name, command, pkg string, wantOverhead func(t *testing.T, pids []int, inits []int)) {
	t.Helper()
	requireCompareTarget(t, command, pkg)
	b := testBundle(t)
	target, err := NewCompareTarget(name)
	if err != nil {
		t.Fatal(err)
	}
	hooks := hooksOf(t, target)
	// A parent of the test binary's own: a benchmark of the same target,
	// or another test run, may run on this machine meanwhile.
	parent := fmt.Sprintf("/troupe-bench-test-%s-%d", name, os.Getpid())
	linuxtest.TrackCgroup(parent)
	hooks.setParent(parent)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tornDown := false
	t.Cleanup(func() {
		if !tornDown {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := target.Teardown(ctx); err != nil {
				t.Errorf("teardown in cleanup: %v", err)
			}
		}
	})
	if err := target.Setup(ctx, b); err != nil {
		t.Fatal(err)
	}
	dir := hooks.dir()
	helper := hooks.helperPid()
	if helper != 0 {
		linuxtest.TrackProcess(helper)
	}

	ids := testIDs(t, 3)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := target.Start(ctx, id); err != nil {
				t.Errorf("start %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := target.Start(ctx, ids[0]); err == nil {
		t.Errorf("a second start of %s succeeded", ids[0])
	}
	if err := target.Start(ctx, "../escape"); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("start of ../escape = %v, want ErrInvalidArgument", err)
	}

	var inits []int
	for _, id := range ids {
		pids := cgroupPids(t, parent+"/"+id)
		if len(pids) != 1 {
			t.Fatalf("container %s: pids %v in its cgroup, want its init only", id, pids)
		}
		// `run -d` returns once the init is told to exec; the exec itself
		// (an empty cmdline meanwhile) may still be a moment away.
		var got string
		if !testutil.Within(5*time.Second, func() bool {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
			if err != nil {
				t.Fatal(err)
			}
			got = strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
			return got == "sleep 3600"
		}) {
			t.Errorf("container %s runs %q after 5s, want sleep 3600", id, got)
		}
		inits = append(inits, pids[0])
	}
	overhead, err := target.OverheadPids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range overhead {
		linuxtest.TrackProcess(pid)
	}
	wantOverhead(t, overhead, inits)

	tornDown = true
	if err := target.Teardown(ctx); err != nil {
		t.Errorf("teardown: %v", err)
	}
	waitGone(t, "container init", inits)
	waitGone(t, "overhead process", overhead)
	if helper != 0 {
		waitGone(t, "helper process", []int{helper})
	}
	if left := processesMentioning(dir); len(left) > 0 {
		t.Errorf("processes left that name %s:\n%s", dir, strings.Join(left, "\n"))
	}
	if cgroups, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", parent)); len(cgroups) > 0 {
		t.Errorf("cgroups left: %v", cgroups)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, parent)); err == nil {
		t.Errorf("cgroup %s left", filepath.Join(cgroupRoot, parent))
	}
	if mounts, err := mountsUnder(dir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v %v", dir, mounts, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s: %v, want it removed", dir, err)
	}
	if err := target.Teardown(ctx); err != nil {
		t.Errorf("a second teardown: %v", err)
	}
}

// noOverhead checks the overhead of a target that leaves no process
// behind a container.
func noOverhead(t *testing.T, pids, _ []int) {
	t.Helper()
	if len(pids) != 0 {
		t.Errorf("OverheadPids = %v, want none", pids)
	}
}
