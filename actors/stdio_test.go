package actors

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors/stdio"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// readStreams reads an attachment to the exit.
func readStreams(t *testing.T, a *stdio.Attachment) (out, errOut string, exit *stdio.Exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var o, e strings.Builder
	for {
		ev, err := a.Next(ctx)
		if errors.Is(err, io.EOF) {
			return o.String(), e.String(), exit
		}
		if err != nil {
			t.Fatalf("read the streams: %v (so far %q, %q)", err, o.String(), e.String())
		}
		switch {
		case ev.Exit != nil:
			exit = ev.Exit
		case ev.Stream == stdio.Stdout:
			o.Write(ev.Data)
		case ev.Stream == stdio.Stderr:
			e.Write(ev.Data)
		}
	}
}

// openFiles counts this process's open descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func TestRealExecStdio(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "c", e.bundle("c", "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	fdsBefore := openFiles(t)

	// Both streams, each on its own, then the exit code.
	p, err := e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, stdio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Stdio {
		t.Errorf("exec'd process %+v, want its stdio kept", p)
	}
	at, err := e.sup.Attach(ctx, "c", p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	sess := at.Session
	a, err := sess.Attach()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, exit := readStreams(t, a)
	if out != "out\n" || errOut != "err\n" || exit == nil || exit.Code != 3 {
		t.Errorf("read %q, %q, exit %+v; want out, err and 3", out, errOut, exit)
	}
	a.Detach()
	if st, err := e.sup.Wait(ctx, "c", p.Pid); err != nil || st.Code != 3 {
		t.Errorf("wait after the exit: %+v, %v", st, err)
	}
	testutil.Eventually(t, "the read streams to go", func() bool {
		_, err := e.sup.Attach(ctx, "c", p.Pid)
		return errors.Is(err, errclass.NotFound)
	})

	// A client that goes mid-stream: the process runs on; the next one
	// writes to its stdin and reads on; wait hears the exit.
	p, err = e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"sh", "-c", "echo ready; read x; echo got $x"}}, stdio.Options{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	at, _ = e.sup.Attach(ctx, "c", p.Pid)
	sess = at.Session
	a, _ = sess.Attach()
	if ev, err := a.Next(ctx); err != nil || string(ev.Data) != "ready\n" {
		t.Fatalf("first line: %+v, %v", ev, err)
	}
	if _, err := sess.Attach(); !errors.Is(err, stdio.ErrAttached) {
		t.Errorf("a second client: %v", err)
	}
	a.Detach()
	waited := make(chan runtime.ExitStatus, 1)
	go func() { st, _ := e.sup.Wait(ctx, "c", p.Pid); waited <- st }()
	if c, _ := e.sup.State().Get("c"); len(c.Processes) != 2 {
		t.Errorf("processes after the client left: %+v, want the init and the exec", c.Processes)
	}
	b, err := sess.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("more\n")); err != nil {
		t.Fatal(err)
	}
	if out, _, exit := readStreams(t, b); out != "got more\n" || exit == nil || exit.Code != 0 {
		t.Errorf("second client read %q, exit %+v", out, exit)
	}
	select {
	case st := <-waited:
		if st.Code != 0 {
			t.Errorf("wait: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("wait did not return after the exit")
	}

	// A terminal: its size, a resize, and what is typed.
	p, err = e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"sh", "-c", "stty size; read x; stty size; echo typed $x"}},
		stdio.Options{Terminal: true, Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Terminal {
		t.Errorf("process %+v, want a terminal", p)
	}
	at, _ = e.sup.Attach(ctx, "c", p.Pid)
	sess = at.Session
	a, _ = sess.Attach()
	var screen strings.Builder
	for !strings.Contains(screen.String(), "24 80") {
		ev, err := a.Next(ctx)
		if err != nil {
			t.Fatalf("terminal: %v; read %q", err, screen.String())
		}
		screen.Write(ev.Data)
	}
	if err := a.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if err := a.Resize(0, 30); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a resize to 0 columns: %v", err)
	}
	if _, err := a.Write([]byte("abc\r")); err != nil {
		t.Fatal(err)
	}
	out, _, exit = readStreams(t, a)
	if !strings.Contains(out, "30 100") || !strings.Contains(out, "typed abc") || exit == nil || exit.Code != 0 {
		t.Errorf("terminal after the resize: %q, exit %+v", out, exit)
	}

	// Bad requests.
	if _, err := e.sup.Attach(ctx, "c", 1); !errors.Is(err, errclass.NotFound) {
		t.Errorf("attach to a pid not in the container: %v", err)
	}
	c, _ := e.sup.State().Get("c")
	if at, err := e.sup.Attach(ctx, "c", c.Processes[0].Pid); err != nil || at.Session != nil || at.InitLog == "" {
		t.Errorf("attach to the init, whose stdio goes to the log: %+v, %v; want its log", at, err)
	}
	if _, err := e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"true"}}, stdio.Options{Terminal: true, Width: 99999}); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("a terminal 99999 columns wide: %v", err)
	}

	// A process left running with its streams unread: deleting the
	// container closes them all.
	if _, err := e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"sh", "-c", "yes"}}, stdio.Options{Stdin: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.sup.Delete(ctx, "c", true); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the streams' descriptors to close", func() bool { return openFiles(t) <= fdsBefore })
}

// A container with a process whose stdio the daemon keeps is not
// checkpointed: no restore could give that stdio back.
func TestRealCheckpointRefusesKeptStdio(t *testing.T) {
	linuxtest.RequireCriu(t)
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "c", e.bundle("c", "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	p, err := e.sup.ExecStdio(ctx, "c", runtime.ProcessSpec{Args: []string{"sleep", "300"}}, stdio.Options{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.Checkpoint(ctx, "c", "cp", runtime.CheckpointOptions{}); !errors.Is(err, errclass.FailedPrecondition) || !strings.Contains(err.Error(), "kept by the daemon") {
		t.Errorf("checkpoint with an attached exec running: %v", err)
	}
	if err := e.sup.Signal(ctx, "c", p.Pid, 9); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the exec to end", func() bool { c, _ := e.sup.State().Get("c"); return len(c.Processes) == 1 })
	if _, err := e.sup.Checkpoint(ctx, "c", "cp", runtime.CheckpointOptions{}); err != nil {
		t.Errorf("checkpoint once it ended: %v", err)
	}
}
