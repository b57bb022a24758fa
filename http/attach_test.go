package http

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
	"github.com/troupe-run/troupe/internal/testutil"
)

// attachClient is a client of the env's server.
func (e *env) attachClient() *client.Client {
	e.t.Helper()
	c, err := client.New(e.base, client.WithHTTPClient(e.client))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// until reads frames until one's output holds want (or a control frame
// satisfies stop), returning what was read.
func until(t *testing.T, s *client.Stream, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		f, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v; read %q", want, err, got.String())
		}
		if f.Control != nil {
			fmt.Fprintf(&got, "[%s %s]", f.Control.Type, f.Control.Error)
			continue
		}
		got.Write(f.Data)
	}
	return got.String()
}

// frames reads to the end of the stream: stdout, stderr and the exit.
func frames(t *testing.T, s *client.Stream) (out, errOut string, exit *api.ProcessExit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var o, e strings.Builder
	for {
		f, err := s.Recv(ctx)
		if errors.Is(err, client.ErrDetached) {
			return o.String(), e.String(), exit
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		switch {
		case f.Control != nil && f.Control.Type == api.ControlExit:
			exit = f.Control.Exit
		case f.Stream == api.StreamStdout:
			o.Write(f.Data)
		case f.Stream == api.StreamStderr:
			e.Write(f.Data)
		}
	}
}

func TestAttach(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.attachClient()
	ctx := context.Background()
	e.startContainer("c", e.bundle("c", "sleep", "300"))

	// The two streams apart, then the exit; wait says it too.
	p, err := cl.Exec(ctx, "c", api.ExecRequest{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.Attach(ctx, "c", p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, exit := frames(t, s)
	if out != "out\n" || errOut != "err\n" || exit == nil || exit.ExitCode != 3 {
		t.Errorf("attach read %q, %q, exit %+v", out, errOut, exit)
	}
	if st, err := cl.Wait(ctx, "c", p.Pid); err != nil || st.ExitCode != 3 {
		t.Errorf("wait: %+v, %v", st, err)
	}
	if _, err := cl.Attach(ctx, "c", p.Pid); !errors.Is(err, errclass.NotFound) {
		t.Errorf("attach after the exit was read: %v", err)
	}

	// A terminal: typed commands are answered, a resize shows, bad input
	// gets an error frame and harms nothing.
	p, err = cl.Exec(ctx, "c", api.ExecRequest{Args: []string{"sh"}, Terminal: true, ConsoleSize: &api.ConsoleSize{Width: 80, Height: 24}})
	if err != nil {
		t.Fatal(err)
	}
	s, err = cl.Attach(ctx, "c", p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Attach(ctx, "c", p.Pid); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("a second client: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Stdin(ctx, []byte("stty size\r")))
	until(t, s, "24 80")
	must(s.Resize(ctx, 132, 43))
	must(s.Stdin(ctx, []byte("stty size\r")))
	until(t, s, "43 132")
	must(s.Resize(ctx, 0, 99999))
	until(t, s, "[error terminal size 0x99999")
	must(s.Send(ctx, api.StreamControl, []byte("{not json")))
	until(t, s, "[error control message")
	must(s.Send(ctx, 7, []byte("x")))
	until(t, s, "[error stream 7")
	must(s.Stdin(ctx, []byte("echo still here\r")))
	until(t, s, "still here")
	must(s.Stdin(ctx, []byte("exit 5\r")))
	if _, _, exit := frames(t, s); exit == nil || exit.ExitCode != 5 {
		t.Errorf("terminal exit %+v, want 5", exit)
	}

	// A client that goes mid-stream: the process runs on, nothing of the
	// attach is left, and the next client reads on.
	p, err = cl.Exec(ctx, "c", api.ExecRequest{Args: []string{"sh", "-c", "while read l; do echo got $l; done; echo bye"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	goroutines, fds := goruntime.NumGoroutine(), openFDs(t)
	for i := range 5 {
		// The daemon lets the last client go once it has answered its
		// close: a new one may come a moment too early (409).
		testutil.Eventually(t, "the last client to be let go", func() bool {
			s, err = cl.Attach(ctx, "c", p.Pid)
			return !errors.Is(err, errclass.FailedPrecondition)
		})
		if err != nil {
			t.Fatal(err)
		}
		must(s.Stdin(ctx, []byte(fmt.Sprintf("%d\n", i))))
		until(t, s, fmt.Sprintf("got %d", i))
		must(s.Close())
	}
	testutil.Eventually(t, "the attaches' goroutines and descriptors to go", func() bool {
		return goruntime.NumGoroutine() <= goroutines && openFDs(t) <= fds
	})
	if c := e.get("c"); len(c.Processes) != 2 {
		t.Errorf("processes after the clients left: %+v", c.Processes)
	}
	testutil.Eventually(t, "the last client to be let go", func() bool {
		s, err = cl.Attach(ctx, "c", p.Pid)
		return !errors.Is(err, errclass.FailedPrecondition)
	})
	if err != nil {
		t.Fatal(err)
	}
	must(s.CloseStdin(ctx))
	if out, _, exit := frames(t, s); out != "bye\n" || exit == nil || exit.ExitCode != 0 {
		t.Errorf("after close-stdin: %q, exit %+v", out, exit)
	}

	sleeper, err := cl.Exec(ctx, "c", api.ExecRequest{Args: []string{"sleep", "300"}, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, []request{
		{"attach without upgrade", "GET", fmt.Sprintf("/containers/c/processes/%d/attach", sleeper.Pid), "", 400, []string{"WebSocket"}},
		{"attach to the init, without upgrade", "GET", fmt.Sprintf("/containers/c/processes/%d/attach", e.get("c").Processes[0].Pid), "", 400, []string{"WebSocket"}},
		{"attach, bad logs", "GET", fmt.Sprintf("/containers/c/processes/%d/attach?logs=maybe", e.get("c").Processes[0].Pid), "", 400, []string{"logs"}},
		{"attach to no such pid", "GET", "/containers/c/processes/999999/attach", "", 404, nil},
		{"attach, bad pid", "GET", "/containers/c/processes/x/attach", "", 400, []string{"pid"}},
		{"wait for no such pid", "GET", "/containers/c/processes/999999/wait", "", 404, nil},
		{"console size without a terminal", "PUT", "/containers/c/processes", `{"args": ["true"], "attach": true, "consoleSize": {"width": 80, "height": 24}}`, 400, []string{"consoleSize"}},
		{"absurd console size", "PUT", "/containers/c/processes", `{"args": ["true"], "terminal": true, "consoleSize": {"width": 100000, "height": 24}}`, 400, []string{"100000"}},
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestAttachInit: a container's init has its output in its log; an attach
// follows it stream by stream, from its start when asked, to the exit.
func TestAttachInit(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.attachClient()
	ctx := context.Background()
	c := e.startContainer("logger", e.bundle("logger", "sh", "-c", "echo hello; echo oops >&2; sleep 1; exit 4"))
	s, err := cl.AttachInit(ctx, "logger", c.Processes[0].Pid, true)
	if err != nil {
		t.Fatal(err)
	}
	// Its stdin is /dev/null: a client's input is refused with an error
	// frame.
	if err := s.Stdin(ctx, []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, errOut, refused strings.Builder
	var exit *api.ProcessExit
	for exit == nil {
		f, err := s.Recv(ctx2)
		if err != nil {
			t.Fatalf("recv: %v (read %q, %q)", err, out.String(), errOut.String())
		}
		switch {
		case f.Control != nil && f.Control.Type == api.ControlExit:
			exit = f.Control.Exit
		case f.Control != nil && f.Control.Type == api.ControlError:
			refused.WriteString(f.Control.Error)
		case f.Stream == api.StreamStdout:
			out.Write(f.Data)
		case f.Stream == api.StreamStderr:
			errOut.Write(f.Data)
		}
	}
	if out.String() != "hello\n" || errOut.String() != "oops\n" || exit.ExitCode != 4 {
		t.Errorf("attach to the init: %q, %q, exit %+v; want hello, oops, 4", out.String(), errOut.String(), exit)
	}
	if !strings.Contains(refused.String(), "stdin is not open") {
		t.Errorf("input to the init was not refused: %q", refused.String())
	}
}

// TestAttachInitStdio: a start may give the init a terminal, or keep its
// stdin, for the client that attaches.
func TestAttachInitStdio(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.attachClient()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	start := func(id, body string) api.Container {
		t.Helper()
		var c api.Container
		decodeBody(t, e.mustStatus(201, "POST", "/containers/"+id, body), &c)
		return c
	}

	c := start("tty", fmt.Sprintf(`{"bundlePath": %q, "terminal": true, "consoleSize": {"width": 80, "height": 24}}`, e.bundle("tty", "sh")))
	s, err := cl.AttachInit(ctx, "tty", c.Processes[0].Pid, true)
	must(err)
	must(s.Stdin(ctx, []byte("stty size; tty\r")))
	until(t, s, "24 80")
	must(s.Resize(ctx, 100, 30))
	must(s.Stdin(ctx, []byte("stty size\r")))
	until(t, s, "30 100")
	must(s.Stdin(ctx, []byte("exit 6\r")))
	if _, _, exit := frames(t, s); exit == nil || exit.ExitCode != 6 {
		t.Errorf("the terminal init's exit: %+v, want 6", exit)
	}

	c = start("in", fmt.Sprintf(`{"bundlePath": %q, "stdin": true}`, e.bundle("in", "sh", "-c", "while read l; do echo got $l; done; echo bye >&2; exit 2")))
	s, err = cl.AttachInit(ctx, "in", c.Processes[0].Pid, true)
	must(err)
	must(s.Stdin(ctx, []byte("one\n")))
	until(t, s, "got one")
	if _, err := cl.AttachInit(ctx, "in", c.Processes[0].Pid, true); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("a second client of the init's stdin: %v", err)
	}
	must(s.CloseStdin(ctx))
	if _, errOut, exit := frames(t, s); errOut != "bye\n" || exit == nil || exit.ExitCode != 2 {
		t.Errorf("after close-stdin: stderr %q, exit %+v; want bye and 2", errOut, exit)
	}
	// Its output went to its log too.
	if logs := string(e.do("GET", "/containers/in/logs", "").body); logs != "got one\nbye\n" {
		t.Errorf("the log of an init with a kept stdin: %q", logs)
	}

	sleeper := e.bundle("sleeper", "sleep", "300")
	e.run(t, []request{
		{"console size without a terminal", "POST", "/containers/x", fmt.Sprintf(`{"bundlePath": %q, "consoleSize": {"width": 80, "height": 24}}`, sleeper), 400, []string{"consoleSize"}},
		{"absurd console size", "POST", "/containers/x", fmt.Sprintf(`{"bundlePath": %q, "terminal": true, "consoleSize": {"width": 80, "height": 100000}}`, sleeper), 400, []string{"100000"}},
		{"a restore with a stdin", "POST", "/containers/x", `{"checkpoint": "c1", "stdin": true}`, 400, []string{"restore"}},
	})
	want(t, "GET x", e.do("GET", "/containers/x", ""), 404)
}
