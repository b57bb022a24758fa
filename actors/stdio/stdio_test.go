package stdio

import (
	"context"
	"errors"
	"io"
	"os/exec"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// run starts a host process with the session's child files and reports
// its exit to the session, as the container actor does for a container's.
func run(t *testing.T, o Options, script string) (*Session, <-chan struct{}) {
	t.Helper()
	s, child, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = child.Stdin, child.Stdout, child.Stderr
	// Its own process group, so that the test can end a grandchild too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		s.Close()
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		s.Exited(runtime.ExitStatus{Code: ws.ExitStatus(), Signal: ws.Signal()})
	}()
	return s, exited
}

// readAll reads events until the exit, returning what each stream got.
func readAll(t *testing.T, a *Attachment) (out, errOut string, dropped int64, exit *Exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var o, e strings.Builder
	for {
		ev, err := a.Next(ctx)
		if errors.Is(err, io.EOF) {
			return o.String(), e.String(), dropped, exit
		}
		if err != nil {
			t.Fatalf("next: %v (so far %q %q)", err, o.String(), e.String())
		}
		switch {
		case ev.Exit != nil:
			exit = ev.Exit
		case ev.Dropped > 0:
			dropped += ev.Dropped
		case ev.Stream == Stdout:
			o.Write(ev.Data)
		case ev.Stream == Stderr:
			e.Write(ev.Data)
		}
	}
}

func TestOutputThenExit(t *testing.T) {
	s, _ := run(t, Options{}, "echo out; echo err >&2; exit 3")
	a, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(); !errors.Is(err, ErrAttached) {
		t.Errorf("a second attach: %v", err)
	}
	out, errOut, dropped, exit := readAll(t, a)
	if out != "out\n" || errOut != "err\n" || dropped != 0 || exit == nil || exit.Code != 3 {
		t.Errorf("got %q %q dropped %d exit %+v; want out, err and 3", out, errOut, dropped, exit)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("a write without stdin: %v", err)
	}
	a.Detach()
	if _, err := s.Attach(); !errors.Is(err, errclass.NotFound) {
		t.Errorf("an attach after the exit was read: %v", err)
	}
}

// A client that comes late (or never reads) costs the process nothing: it
// runs to its end, and the client gets the newest output and how much was
// dropped.
func TestBoundedBuffer(t *testing.T) {
	const buffer = 64 << 10
	s, exited := run(t, Options{Buffer: buffer}, "head -c 1048576 /dev/zero; echo; echo end")
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer blocked: nobody reads, yet it did not finish")
	}
	a, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	out, _, dropped, exit := readAll(t, a)
	// What the pipe still held when the client came (64 KiB at most), and
	// a read under way (a chunk), came after: nothing is dropped once a
	// client is attached.
	const most = buffer + 64<<10 + chunk
	if !strings.HasSuffix(out, "\nend\n") || len(out) > most || exit == nil || exit.Code != 0 {
		t.Errorf("read %d bytes ending %q, exit %+v; want at most %d ending with end", len(out), out[max(0, len(out)-8):], exit, most)
	}
	if total := dropped + int64(len(out)); total != 1048576+5 {
		t.Errorf("dropped %d + read %d = %d bytes, want all %d accounted for", dropped, len(out), total, 1048576+5)
	}
}

// An attached client loses nothing, however slow: the process waits for
// it once the buffer is full.
func TestAttachedClientLosesNothing(t *testing.T) {
	const buffer = 64 << 10
	s, child, err := New(Options{Buffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	a, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("head", "-c", "4194304", "/dev/zero")
	cmd.Stdout, cmd.Stderr = child.Stdout, child.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		s.Exited(runtime.ExitStatus{Code: cmd.ProcessState.ExitCode()})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got, dropped int64
	for {
		ev, err := a.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += int64(len(ev.Data))
		dropped += ev.Dropped
		if got < 1<<20 {
			time.Sleep(time.Millisecond) // a slow client, for the first MiB
		}
	}
	if got != 4<<20 || dropped != 0 {
		t.Errorf("an attached client read %d bytes, %d dropped; want all %d", got, dropped, 4<<20)
	}
}

func TestStdinAndReattach(t *testing.T) {
	s, _ := run(t, Options{Stdin: true}, "read a; echo first $a; read b; echo second $b")
	a, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ev, err := a.Next(ctx); err != nil || string(ev.Data) != "first one\n" {
		t.Fatalf("first answer: %+v %v", ev, err)
	}
	// The client goes; the process waits for its input; another comes.
	a.Detach()
	if _, err := a.Next(ctx); err == nil {
		t.Error("a detached client read on")
	}
	b, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	out, _, _, exit := readAll(t, b)
	if out != "second two\n" || exit == nil || exit.Code != 0 {
		t.Errorf("second client read %q, exit %+v", out, exit)
	}
}

// A grandchild that keeps the output open delays the exit by the grace
// only.
func TestGraceAfterExit(t *testing.T) {
	s, _ := run(t, Options{}, "sleep 60 & echo parent done")
	a, err := s.Attach()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	out, _, _, exit := readAll(t, a)
	if out != "parent done\n" || exit == nil || exit.Code != 0 {
		t.Errorf("read %q, exit %+v", out, exit)
	}
	if took := time.Since(t0); took > exitGrace+2*time.Second {
		t.Errorf("the exit came after %v, want within the grace of %v", took, exitGrace)
	}
}

// Sessions leave no goroutine behind once closed, read or not.
func TestNoLeak(t *testing.T) {
	before := goruntime.NumGoroutine()
	for range 20 {
		s, child, err := New(Options{Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sleep", "60")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = child.Stdin, child.Stdout, child.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Close()
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		a, err := s.Attach()
		if err != nil {
			t.Fatal(err)
		}
		a.Detach()
		s.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after closing 20 sessions, %d before", n, before)
	}
}

func TestBadTerminalSize(t *testing.T) {
	if _, _, err := New(Options{Terminal: true, Width: 1 << 20, Height: 10}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a terminal a million columns wide: %v", err)
	}
}
