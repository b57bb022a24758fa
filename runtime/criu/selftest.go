package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSelfTestTimeout bounds a whole self-test; a working CRIU needs well
// under a second here.
const DefaultSelfTestTimeout = 10 * time.Second

// versionTimeout bounds `criu --version`, which does nothing else.
const versionTimeout = 5 * time.Second

// Version asks the criu at path for its version ("4.2.1").
func Version(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s --version did not answer within %s", path, versionTimeout)
	}
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s --version printed no version: %q", path, strings.TrimSpace(string(out)))
}

// SelfTest dumps and restores a small process tree with the criu at path,
// all within timeout: a shell loop that forks a child every 50 ms, in its
// own pid and network namespaces (a network namespace makes CRIU lock the
// network, with iptables, as for a container). The restored tree must fork
// on. It returns CRIU's version (when it told one) and, when CRIU does not
// work here, why, in words for a user: "CRIU 4.1.1 did not finish a test
// dump within 10s". It needs root. Nothing of the test is left behind.
func SelfTest(ctx context.Context, path string, timeout time.Duration) (version string, err error) {
	// The test's processes carry a parent-death signal, which the kernel
	// sends when the thread that forked them ends, not the process; Go
	// ends threads that other goroutines locked (libcontainer's, while the
	// daemon adopts containers) whenever it likes. Forked from a thread
	// locked here, they die only with the test or the daemon.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	version, err = Version(ctx, path)
	if err != nil {
		return "", err
	}
	name := "CRIU " + version
	dir, err := os.MkdirTemp("", "troupe-criu-selftest-")
	if err != nil {
		return version, fmt.Errorf("%s self-test: %w", name, err)
	}
	defer RemoveAll(dir)

	// Twice the deadline's worth of forks: it outlives any test that can
	// still pass.
	tree, err := startTree(ctx, int(2*timeout/(50*time.Millisecond))+1)
	if err != nil {
		return version, fmt.Errorf("%s self-test: %w", name, err)
	}
	defer tree.stop()

	// A dump without --leave-running kills the tree once it is saved.
	dump := criuCommand(ctx, path, "dump", "--tree", strconv.Itoa(tree.cmd.Process.Pid),
		"--images-dir", dir, "--log-file", "dump.log", "-v4")
	if err := dump.Run(); err != nil {
		return version, phaseError(ctx, name, "dump", timeout, err, filepath.Join(dir, "dump.log"))
	}
	if err := tree.waitExit(ctx); err != nil {
		return version, fmt.Errorf("%s self-test: after the dump: %w", name, err)
	}

	// In the foreground criu restore stays the restored tree's parent until
	// the tree ends: nothing is orphaned.
	pidFile := filepath.Join(dir, "restored.pid")
	restore := criuCommand(ctx, path, "restore", "--images-dir", dir, "--log-file", "restore.log", "-v4",
		"--pidfile", pidFile)
	if err := restore.Start(); err != nil {
		return version, fmt.Errorf("%s self-test: restore: %w", name, err)
	}
	r := &restoreRun{done: make(chan struct{})}
	go func() {
		r.err = restore.Wait()
		close(r.done)
	}()
	restored, err := r.waitRunning(ctx, pidFile)
	if restored > 0 {
		_ = unix.Kill(restored, unix.SIGKILL)
	}
	if err != nil {
		KillTree(restore.Process.Pid)
		<-r.done
		return version, phaseError(ctx, name, "restore", timeout, err, filepath.Join(dir, "restore.log"))
	}
	select {
	case <-r.done:
	case <-time.After(versionTimeout):
		KillTree(restore.Process.Pid)
		<-r.done
		return version, fmt.Errorf("%s did not end after its restored tree was killed", name)
	}
	return version, nil
}

// criuCommand is one run of criu, killed with whatever it forked when ctx
// ends.
func criuCommand(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	// A daemon that dies during its self-test takes the test's CRIU along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: unix.SIGKILL}
	cmd.Cancel = func() error {
		KillTree(cmd.Process.Pid)
		return nil
	}
	cmd.WaitDelay = time.Second
	return cmd
}

// phaseError says why a dump or restore of the test tree failed: the
// deadline, or the errors CRIU logged.
func phaseError(ctx context.Context, name, phase string, timeout time.Duration, err error, log string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s did not finish a test %s within %s", name, phase, timeout)
	}
	if why := LogErrors(log); why != "" {
		err = errors.New(why)
	}
	return fmt.Errorf("%s failed a test %s: %w", name, phase, err)
}

// LogErrors returns the last few error lines of a CRIU log, joined, or ""
// when there are none (or no log).
func LogErrors(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		// Every run logs an RLIMIT_NOFILE error that changes nothing.
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// testTree is the process tree a self-test dumps.
type testTree struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// treeScript forks a child every 50 ms (`sleep` is an external command in
// every shell that matters), %d times: the tree ends by itself, so that one
// restored by a self-test whose daemon died meanwhile does not run for ever
// (a restored tree has no parent-death signal, and criu restore's own would
// only orphan it).
const treeScript = "i=0; while [ $i -lt %d ]; do sleep 0.05; i=$((i+1)); done"

// startTree starts the test tree and waits until it has forked.
func startTree(ctx context.Context, forks int) (*testTree, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(sh, "-c", fmt.Sprintf(treeScript, forks))
	// Its own session: CRIU dumps no foreign session or terminal. A pid
	// namespace of its own makes the shell its init, so killing the shell
	// takes its children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true,
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNET,
		Pdeathsig:  unix.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a test process tree: %w", err)
	}
	t := &testTree{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(t.exited)
	}()
	pid := cmd.Process.Pid
	for len(processChildren(pid)) == 0 {
		select {
		case <-t.exited:
			return nil, fmt.Errorf("the test process tree (%s) exited at once", sh)
		case <-ctx.Done():
			t.stop()
			return nil, fmt.Errorf("the test process tree did not fork: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return t, nil
}

// waitExit waits until the dumped tree is gone, as a dump leaves it.
func (t *testTree) waitExit(ctx context.Context) error {
	select {
	case <-t.exited:
		return nil
	case <-ctx.Done():
		return errors.New("the dumped tree still runs")
	}
}

// stop kills the tree if it still runs and reaps it.
func (t *testTree) stop() {
	select {
	case <-t.exited:
	default:
		_ = t.cmd.Process.Kill()
		<-t.exited
	}
}

// restoreRun is a criu restore in the foreground; done is closed when it
// has ended, with err.
type restoreRun struct {
	done chan struct{}
	err  error
}

// waitRunning waits until criu restore has written the restored tree's pid
// and that tree forks a new child: it runs again.
func (r *restoreRun) waitRunning(ctx context.Context, pidFile string) (int, error) {
	pid := 0
	var first []int
	for {
		if pid == 0 {
			if data, err := os.ReadFile(pidFile); err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && p > 0 {
					pid, first = p, processChildren(p)
				}
			}
		} else if kids := processChildren(pid); len(kids) > 0 && !sameSet(kids, first) {
			return pid, nil
		}
		select {
		case <-r.done:
			if r.err != nil {
				return pid, r.err
			}
			return pid, errors.New("criu restore ended before the tree ran")
		case <-ctx.Done():
			return pid, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
