package linuxtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/runtime/procstat"
)

// The guard is a second process per test binary that removes what the run
// made once the binary ends, however it ends: t.Cleanup and deferred code do
// not run when go test's -timeout panics the binary, nor after a SIGKILL, and
// the containers and daemons a test started outlive it. The test process
// tells the guard what it makes (Track*), one line per thing on a pipe; EOF
// on that pipe means the test process is gone, and the guard sweeps.
const (
	// guardEnv set (to the test process's pid) means: this process is the
	// guard, its pipe is fd 3.
	guardEnv = "TROUPE_TEST_GUARD"
	// GuardLogEnv names the file the guard logs its sweeps to, by default
	// troupe-test-guard.log in the temporary directory.
	GuardLogEnv = "TROUPE_TEST_GUARD_LOG"
)

// guardPipe is the write end of the pipe to this binary's guard, nil when
// none runs. It is process-wide like the guard itself: the helpers that make
// what must be tracked are called from many tests and packages.
var (
	guardPipe    *os.File
	guardGoneErr sync.Once
)

// Guarded runs a TestMain's body, run (m.Run and what goes with it), under
// a guard, and returns its exit code. Call it first thing in TestMain, after
// the container init's dispatch:
//
//	func TestMain(m *testing.M) {
//		linux.Init()
//		os.Exit(linuxtest.Guarded(m.Run))
//	}
//
// The run gets a temporary directory of its own (TMPDIR), which the guard
// removes with everything under it (unmounting first): state dirs, bundles
// and t.TempDir need no tracking. Cgroup parents and daemons do:
// TrackCgroup, TrackProcess. In the guard process Guarded never returns.
//
// When not root, run runs unguarded: its tests that start containers skip
// themselves (RequireRoot), and the others make nothing a guard would sweep.
func Guarded(run func() int) int {
	if pid := os.Getenv(guardEnv); pid != "" {
		os.Exit(guard(os.NewFile(3, "guard pipe"), pid))
	}
	if os.Geteuid() != 0 {
		return run()
	}
	// A fuzz worker starts no container, and it inherits the fuzzing
	// coordinator's pipes without close-on-exec: a guard would inherit
	// them in turn and hold them open after the worker is gone.
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			return run()
		}
	}
	dir, err := os.MkdirTemp("", "troupe-test-run-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "linuxtest: %v\n", err)
		return 1
	}
	// Containers running as other users reach their rootfs through it.
	err = os.Chmod(dir, 0o755)
	if err == nil {
		err = startGuard()
	}
	if err != nil {
		os.Remove(dir)
		fmt.Fprintf(os.Stderr, "linuxtest: start the test guard: %v\n", err)
		return 1
	}
	send("dir", dir)
	os.Setenv("TMPDIR", dir)
	code := run()
	// What the tests made is gone by now, and so the run's directory is
	// empty; the guard reports whatever is left as a leak.
	_ = os.Remove(dir)
	send("exit", strconv.Itoa(code))
	return code
}

// startGuard starts the guard: this binary again, in a session of its own
// (a Ctrl-C at the terminal is not for it) and without this process's
// stdout and stderr, which go test reads until every holder has closed them.
func startGuard() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), guardEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	// It outlives this process: never waited for.
	_ = cmd.Process.Release()
	guardPipe = w
	return nil
}

// TrackCgroup tells the guard about a cgroup parent (a path like
// "/troupe-test-x", as given to the runtime) that the run's containers or
// daemons use, so that after the binary ends it kills every process under it
// in every hierarchy and removes its directories. Call it right after
// choosing the parent; it need not exist yet. The parent must be the run's
// own: another run's containers under it would be killed.
func TrackCgroup(parent string) { send("cgroup", parent) }

// TrackProcess tells the guard about a process the run started that would
// outlive it, such as a daemon, to be killed after the binary ends. The
// guard knows it by its pid and start time: a pid used again by another
// process is left alone.
func TrackProcess(pid int) {
	if start, ok := StartTime(pid); ok {
		send("pid", fmt.Sprintf("%d %d", pid, start))
	}
}

// send writes one line to the guard: a single write of less than a pipe
// buffer, which concurrent tests cannot interleave.
func send(kind, arg string) {
	if guardPipe == nil {
		return
	}
	if _, err := guardPipe.WriteString(kind + " " + strconv.Quote(arg) + "\n"); err != nil {
		guardGoneErr.Do(func() {
			fmt.Fprintf(os.Stderr, "linuxtest: the test guard is gone, what this run leaves is not cleaned up: %v\n", err)
		})
	}
}

// StartTime returns the start time of pid (in clock ticks since boot) and
// whether it is a live process: not there, a zombie or dead is not. A pid
// and its start time name one process, even once the pid is used again.
func StartTime(pid int) (uint64, bool) {
	st, err := procstat.Read(pid)
	if err != nil || st.Gone() {
		return 0, false
	}
	return st.StartTicks, true
}

// guard reads what the run tracks until the test process is gone, then
// sweeps and logs what it found. Everything it waits for is bounded, and a
// watchdog ends it should the kernel hold it anyway.
func guard(pipe *os.File, pid string) int {
	logPath := os.Getenv(GuardLogEnv)
	if logPath == "" {
		logPath = filepath.Join(os.TempDir(), "troupe-test-guard.log")
	}
	who := fmt.Sprintf("%s (pid %s)", filepath.Base(os.Args[0]), pid)
	var s sweep
	exited := ""
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		kind, quoted, _ := strings.Cut(sc.Text(), " ")
		arg, err := strconv.Unquote(quoted)
		if err != nil {
			continue
		}
		switch kind {
		case "cgroup":
			s.cgroups = append(s.cgroups, arg)
		case "dir":
			s.dirs = append(s.dirs, arg)
		case "pid":
			var p tracked
			if _, err := fmt.Sscan(arg, &p.pid, &p.start); err == nil {
				s.procs = append(s.procs, p)
			}
		case "exit":
			exited = arg
		}
	}
	time.AfterFunc(time.Minute, func() {
		logTo(logPath, who, []string{"the sweep did not finish within a minute; gave up"})
		os.Exit(2)
	})
	found := s.run()
	switch {
	case exited == "" && len(found) > 0:
		logTo(logPath, who, append([]string{"the test binary ended before its cleanup (timeout, panic or kill); swept what it left:"}, found...))
	case exited == "":
		logTo(logPath, who, []string{"the test binary ended before its cleanup (timeout, panic or kill); nothing was left"})
	case len(found) > 0:
		logTo(logPath, who, append([]string{"the test binary exited (code " + exited + ") but its tests leaked:"}, found...))
	}
	return 0
}

func logTo(path, who string, lines []string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n", time.Now().Format(time.RFC3339), who, lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(&b, "\t%s\n", l)
	}
	_, _ = f.WriteString(b.String())
}

// tracked is a process known by pid and start time.
type tracked struct {
	pid   int
	start uint64
}

func (p tracked) alive() bool {
	start, ok := StartTime(p.pid)
	return ok && start == p.start
}

// sweep is what a run tracked.
type sweep struct {
	procs   []tracked
	cgroups []string
	dirs    []string
}

// run kills the tracked processes, then everything in the tracked cgroups
// (the daemons' containers among it), then removes the cgroups and the
// directories, and returns what it found, one line each.
func (s *sweep) run() (found []string) {
	var killed []tracked
	for _, p := range s.procs {
		if p.alive() {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			killed = append(killed, p)
			found = append(found, fmt.Sprintf("killed process %d", p.pid))
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		killed = slices.DeleteFunc(killed, func(p tracked) bool { return !p.alive() })
		if len(killed) == 0 {
			break
		}
		if time.Now().After(deadline) {
			found = append(found, fmt.Sprintf("processes %v still alive 5s after SIGKILL", killed))
			break
		}
	}
	for _, parent := range s.cgroups {
		dirs := cgroupDirs(parent)
		if len(dirs) == 0 {
			continue
		}
		n, err := KillCgroup(parent)
		RemoveCgroup(parent)
		line := fmt.Sprintf("cgroup %s: killed %d processes, removed %d of its directories", parent, n, len(dirs)-len(cgroupDirs(parent)))
		if err != nil {
			line += "; " + err.Error()
		}
		if left := cgroupDirs(parent); len(left) > 0 {
			line += fmt.Sprintf("; could not remove %v", left)
		}
		found = append(found, line)
	}
	for _, dir := range s.dirs {
		if line := sweepDir(dir); line != "" {
			found = append(found, line)
		}
	}
	return found
}

// sweepDir removes dir, unmounting first, and says what it did ("" when
// dir is not there).
func sweepDir(dir string) string {
	if _, err := os.Lstat(dir); err != nil {
		return ""
	}
	if dir != filepath.Clean(dir) || strings.Count(dir, "/") < 2 {
		return "refused to remove " + dir + ": not an absolute path two levels deep"
	}
	var names []string
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	if err := RemoveAll(dir); err != nil {
		return fmt.Sprintf("remove %s (holding %v): %v", dir, names, err)
	}
	return fmt.Sprintf("removed %s, holding %v", dir, names)
}

// RemoveAll removes dir like os.RemoveAll, but unmounts first whatever is
// mounted at or below it: os.RemoveAll would go on into a mounted file
// system and delete what is there — in a cgroup hierarchy (CRIU's cgroup
// yard), every empty cgroup of the machine. A mount there is a leak of the
// test's, and the error names it.
func RemoveAll(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// mountinfo has the mount points' real paths.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	} else if os.IsNotExist(err) {
		return nil
	}
	var unmounted []string
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err == nil {
			unmounted = append(unmounted, m)
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("%s not removed: %v still mounted below it", dir, left)
	}
	err = os.RemoveAll(dir)
	if len(unmounted) > 0 {
		err = errors.Join(fmt.Errorf("%v were mounted below %s (unmounted)", unmounted, dir), err)
	}
	return err
}

// mountsUnder returns the mount points at or below dir in this process's
// mount namespace, deepest first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var ms []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if m := unescapeOctal(f[4]); m == dir || strings.HasPrefix(m, dir+"/") {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b string) int { return len(b) - len(a) })
	return ms
}

// unescapeOctal undoes mountinfo's escapes of space, tab, newline and
// backslash (\040 and the like).
func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
