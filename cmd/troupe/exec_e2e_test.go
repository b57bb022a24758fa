package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/internal/testutil"
)

// openPty opens a new pseudo-terminal of the given size: the test types
// into master what the program on slave reads.
func openPty(t *testing.T, width, height int) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	resizePty(t, m, width, height)
	return m, s
}

func resizePty(t *testing.T, m *os.File, width, height int) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)}); err != nil {
		t.Fatal(err)
	}
}

// screen collects what a program writes to its terminal.
type screen struct {
	t   *testing.T
	out chan string
	all strings.Builder
}

func newScreen(t *testing.T, m *os.File) *screen {
	s := &screen{t: t, out: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			if n > 0 {
				s.out <- string(buf[:n])
			}
			if err != nil {
				close(s.out)
				return
			}
		}
	}()
	return s
}

// until waits for want on the screen, after what was seen before.
func (s *screen) until(want string) {
	s.t.Helper()
	deadline := time.After(15 * time.Second)
	for !strings.Contains(s.all.String(), want) {
		select {
		case chunk, ok := <-s.out:
			if !ok {
				s.t.Fatalf("the terminal closed before %q; it showed %q", want, s.all.String())
			}
			s.all.WriteString(chunk)
		case <-deadline:
			s.t.Fatalf("no %q on the terminal in 15s; it showed %q", want, s.all.String())
		}
	}
	// What follows is looked for in what comes next.
	rest := s.all.String()[strings.Index(s.all.String(), want)+len(want):]
	s.all.Reset()
	s.all.WriteString(rest)
}

// exitCode is the exit code of a command's error (0 for none).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("not an exit: %v", err)
	}
	return ee.ExitCode()
}

// TestExecAttachWithCLI: troupe exec shows what the process wrote on the
// right streams and ends with its code; -it runs an interactive shell
// through a terminal that follows ours; a client killed mid-stream leaves
// the process running and nothing behind in the daemon.
func TestExecAttachWithCLI(t *testing.T) {
	d := startDaemon(t)
	bundle := filepath.Join(d.dir, "box")
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	troupe := func(args ...string) *exec.Cmd {
		return command(t, d.bin, append([]string{"--address", "unix://" + d.sock}, args...)...)
	}
	if out, err := troupe("start", "box", bundle).CombinedOutput(); err != nil {
		t.Fatalf("start: %v: %s\n%s", err, out, d.log())
	}

	// The done-when case of the issue, stream by stream.
	cmd := troupe("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want 3, out, err\n%s", code, stdout.String(), stderr.String(), d.log())
	}
	// -i: our stdin is the process's, its end the process's end.
	cmd = troupe("exec", "-i", "box", "--", "sh", "-c", "while read l; do echo got $l; done; echo bye")
	cmd.Stdin = strings.NewReader("one\ntwo\n")
	if out, err := cmd.Output(); err != nil || string(out) != "got one\ngot two\nbye\n" {
		t.Errorf("exec -i: %q, %v", out, err)
	}

	// -it: a shell on a terminal. The client is the terminal's session
	// leader, as in a user's shell, so that a resize reaches it.
	master, slave := openPty(t, 80, 24)
	cmd = troupe("exec", "-it", "box", "--", "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scr := newScreen(t, master)
	type1 := func(s string) {
		if _, err := io.WriteString(master, s); err != nil {
			t.Fatal(err)
		}
	}
	type1("stty size\r")
	scr.until("24 80")
	resizePty(t, master, 132, 43)
	// SIGWINCH is asynchronous: ask until the new size shows.
	testutil.Eventually(t, "the resize to reach the container's terminal", func() bool {
		type1("stty size\r")
		select {
		case chunk := <-scr.out:
			scr.all.WriteString(chunk)
		case <-time.After(200 * time.Millisecond):
		}
		return strings.Contains(scr.all.String(), "43 132")
	})
	type1("echo $((6*7))\r")
	scr.until("42")
	type1("exit 7\r")
	if code := exitCode(t, cmd.Wait()); code != 7 {
		t.Errorf("exec -it sh: exit %d, want 7", code)
	}
	// Our terminal is back as it was: cooked, echoing.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		t.Errorf("the terminal was left raw: lflag %#x", tio.Lflag)
	}

	// A client killed mid-stream: the process runs on, the daemon keeps
	// no more descriptors than before.
	daemonFDs := func() int {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(fds)
	}
	before := daemonFDs()
	cmd = troupe("exec", "-i", "box", "--", "sh", "-c", "while read l; do echo got $l; done")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(in, "hello\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := out.Read(buf); err != nil || string(buf[:n]) != "got hello\n" {
		t.Fatalf("first answer: %q, %v", buf[:n], err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if got := inspect(t, d, "box"); !strings.Contains(got, `"while read l; do echo got $l; done"`) {
		t.Errorf("the process is gone with its client:\n%s", got)
	}
	// Its stdio stays (for the next client), nothing else: no more than
	// its three pipes' ends.
	testutil.Eventually(t, "the daemon to let go of the killed client", func() bool { return daemonFDs() <= before+3 })

	if out, err := troupe("rm", "-f", "box").CombinedOutput(); err != nil {
		t.Fatalf("rm: %v %s", err, out)
	}
	testutil.Eventually(t, "the daemon to close the streams of the removed container", func() bool { return daemonFDs() <= before })
}

// inspect is troupe inspect ID's output.
func inspect(t *testing.T, d *daemon, id string) string {
	t.Helper()
	out, err := command(t, d.bin, "--address", "unix://"+d.sock, "inspect", id).CombinedOutput()
	if err != nil {
		t.Fatalf("inspect %s: %v: %s", id, err, out)
	}
	return string(out)
}

// TestRunBundle: troupe run takes a bundle as runc run does, attached.
func TestRunBundle(t *testing.T) {
	d := startDaemon(t)
	bundle := filepath.Join(d.dir, "job")
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sh", "-c", "echo from the bundle; exit 5").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	cmd := command(t, d.bin, "--address", "unix://"+d.sock, "run", "--rm", "--name", "job", bundle)
	out, err := cmd.Output()
	if code := exitCode(t, err); code != 5 || string(out) != "from the bundle\n" {
		t.Errorf("run BUNDLE: exit %d, %q; want 5 and its line", code, out)
	}
	for _, bad := range [][]string{
		{"run", bundle, "echo", "x"},
		{"run", "--memory", "64m", bundle},
		{"run", "./no-such-bundle"},
	} {
		if out, err := command(t, d.bin, append([]string{"--address", "unix://" + d.sock}, bad...)...).CombinedOutput(); err == nil {
			t.Errorf("troupe %v: accepted: %s", bad, out)
		}
	}
}
