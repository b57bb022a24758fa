package linux

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/console"
)

// An exec with a console socket gets a terminal of its own in the
// container, of the size asked, whose master comes back over the socket.
func TestExecTerminal(t *testing.T) {
	e := newEnv(t)
	c := e.start("tty", busybox.Options{})
	parent, child, err := console.Socket()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p, err := c.Exec(context.Background(), runtime.ProcessSpec{
		Args:          []string{"sh", "-c", "tty; stty size; read line; echo got $line; stty size"},
		ConsoleSocket: child, ConsoleWidth: 100, ConsoleHeight: 30,
	})
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	master, err := console.Receive(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	_ = master.SetDeadline(time.Now().Add(10 * time.Second))
	// read reads until want shows, keeping what came after it for the
	// next call: one read may bring several answers.
	var pending string
	read := func(want string) string {
		t.Helper()
		buf := make([]byte, 1024)
		for !strings.Contains(pending, want) {
			n, err := master.Read(buf)
			pending += string(buf[:n])
			if err != nil && !strings.Contains(pending, want) {
				t.Fatalf("read the terminal: %v; got %q, want %q in it", err, pending, want)
			}
		}
		i := strings.Index(pending, want) + len(want)
		got := pending[:i]
		pending = pending[i:]
		return got
	}
	if out := read("30 100"); !strings.Contains(out, "/dev/pts/") {
		t.Errorf("the process's tty: %q, want a /dev/pts one", out)
	}
	if err := console.Resize(master, 120, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(master, "hello\n"); err != nil {
		t.Fatal(err)
	}
	read("got hello")
	read("40 120")
	if st := wait(t, p); st.Code != 0 {
		t.Errorf("exit: %v", st)
	}
	for _, bad := range [][2]int{{0, 10}, {10, 0}, {console.MaxSize + 1, 10}, {-1, 5}} {
		if err := console.Resize(master, bad[0], bad[1]); err == nil {
			t.Errorf("resize to %dx%d accepted", bad[0], bad[1])
		}
	}
}

// An init may have a terminal, or a stdin of the caller's, instead of
// /dev/null and the log.
func TestStartTerminalAndStdin(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	startWith := func(id string, o runtime.StartOptions, args ...string) runtime.Container {
		t.Helper()
		o.BundlePath = e.bundle(id, busybox.Options{Args: args})
		c, err := e.rt.Start(ctx, id, o)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), true) })
		return c
	}

	parent, child, err := console.Socket()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	c := startWith("tty", runtime.StartOptions{Terminal: true, ConsoleSocket: child, ConsoleWidth: 77, ConsoleHeight: 22},
		"sh", "-c", "tty; stty size; read x; echo got $x; exit 6")
	child.Close()
	master, err := console.Receive(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	_ = master.SetDeadline(time.Now().Add(10 * time.Second))
	var screen string
	buf := make([]byte, 1024)
	for !strings.Contains(screen, "22 77") {
		n, err := master.Read(buf)
		screen += string(buf[:n])
		if err != nil {
			t.Fatalf("read the init's terminal: %v; got %q", err, screen)
		}
	}
	if !strings.Contains(screen, "/dev/") {
		t.Errorf("the init's tty: %q", screen)
	}
	if _, err := io.WriteString(master, "typed\r"); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c.Init()); st.Code != 6 {
		t.Errorf("init exit %v, want 6", st)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c = startWith("stdin", runtime.StartOptions{Stdin: r}, "sh", "-c", "read x; echo got $x")
	r.Close()
	if _, err := io.WriteString(w, "piped\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st := wait(t, c.Init()); st.Code != 0 {
		t.Errorf("init exit %v", st)
	}
	if log := readLog(t, c); log != "got piped\n" {
		t.Errorf("the init read %q from its stdin", log)
	}

	// A bundle that wants a terminal needs one.
	b := e.bundle("wants-tty", busybox.Options{})
	cfg := filepath.Join(b, "config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec["process"].(map[string]any)["terminal"] = true
	if data, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, check := range []func() error{
		func() error { return e.rt.Check(ctx, "wants-tty", runtime.StartOptions{BundlePath: b}) },
		func() error { _, err := e.rt.Start(ctx, "wants-tty", runtime.StartOptions{BundlePath: b}); return err },
	} {
		if err := check(); !errors.Is(err, errclass.InvalidArgument) || !strings.Contains(err.Error(), "process.terminal") {
			t.Errorf("a bundle with process.terminal, started without a terminal: %v", err)
		}
	}
	if err := e.rt.Check(ctx, "wants-tty", runtime.StartOptions{BundlePath: b, Terminal: true}); err != nil {
		t.Errorf("checked with a terminal: %v", err)
	}
}
