package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/console"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestExecStdio checks that an exec's stdio files reach the engine as
// descriptors: the process writes into the test's pipe.
func TestExecStdio(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "stdio"})
	cl := serve(t, e.Runtime)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cl.Start(ctx, "stdio", runtime.StartOptions{BundlePath: e.Bundle(t, "stdio")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"sh", "-c", "read x; echo got $x; echo oops >&2"}, Stdin: inR, Stdout: outW, Stderr: outW})
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Spec(); s.Stdin != nil || s.Stdout != nil || len(s.Args) != 3 {
		t.Errorf("Spec = %+v, want the args without stdio", s)
	}
	if _, err := inW.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := linuxtest.Within(10*time.Second, func() (err error) { out, err = io.ReadAll(outR); return err }); err != nil {
		t.Fatal(err)
	}
	if string(out) != "got hello\noops\n" {
		t.Errorf("the process wrote %q", out)
	}
	if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
		t.Errorf("exit %+v, %v", st, err)
	}
}

// TestExecStdioFullPipe: an exec's stdout made by os.Pipe (non-blocking
// on the caller's side) is blocking for the process: writing into a full
// pipe waits for the reader instead of failing with EAGAIN.
func TestExecStdioFullPipe(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "fullpipe"})
	cl := serve(t, e.Runtime)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cl.Start(ctx, "fullpipe", runtime.StartOptions{BundlePath: e.Bundle(t, "fullpipe")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"head", "-c", "1048576", "/dev/zero"}, Stdout: outW, Stderr: outW})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the pipe fills meanwhile
	n, err := io.Copy(io.Discard, outR)
	if err != nil || n != 1<<20 {
		t.Errorf("read %d bytes (%v), want all 1 MiB", n, err)
	}
	if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
		t.Errorf("exit %+v, %v: the process failed writing into a full pipe", st, err)
	}
}

// TestExecTerminal checks that the console socket reaches the engine too:
// the pty's master comes back to the caller, not to the engine.
func TestExecTerminal(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "tty"})
	cl := serve(t, e.Runtime)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cl.Start(ctx, "tty", runtime.StartOptions{BundlePath: e.Bundle(t, "tty")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	parent, child, err := console.Socket()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"sh", "-c", "stty size"}, ConsoleSocket: child, ConsoleWidth: 91, ConsoleHeight: 19})
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	master, err := console.Receive(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	var out []byte
	buf := make([]byte, 256)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(out), "19 91") {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("read the terminal: %v; got %q", err, out)
		}
	}
	if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
		t.Errorf("exit %+v, %v", st, err)
	}
}

// TestStartTerminalAndStdin checks that an init's stdin and console
// socket reach the engine.
func TestStartTerminalAndStdin(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "inittty"})
	cl := serve(t, e.Runtime)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	parent, child, err := console.Socket()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	c, err := cl.Start(ctx, "inittty", runtime.StartOptions{BundlePath: e.Bundle(t, "inittty", "sh", "-c", "stty size; exit 2"),
		Terminal: true, ConsoleSocket: child, ConsoleWidth: 61, ConsoleHeight: 17})
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	master, err := console.Receive(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(master) // to EIO: the init exited
	if !strings.Contains(string(out), "17 61") {
		t.Errorf("the init's terminal showed %q", out)
	}
	if st, err := c.Init().Wait(ctx); err != nil || st.Code != 2 {
		t.Errorf("exit %+v, %v", st, err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err = cl.Start(ctx, "initstdin", runtime.StartOptions{BundlePath: e.Bundle(t, "initstdin", "sh", "-c", "read x; exit $x"), Stdin: r})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if _, err := io.WriteString(w, "9\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st, err := c.Init().Wait(ctx); err != nil || st.Code != 9 {
		t.Errorf("exit %+v, %v; want what it read from its stdin, 9", st, err)
	}
}

// TestNoGoroutinePerContainer checks that watching containers and
// processes through the client costs no goroutine on either side, as on
// the real runtime.
func TestNoGoroutinePerContainer(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "goroutines"})
	cl := serve(t, e.Runtime)
	bundle := e.Bundle(t, "goroutines")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The reactor and the connection's goroutines start with the first
	// container.
	first, err := cl.Start(ctx, "first", runtime.StartOptions{BundlePath: bundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Delete(context.Background(), true) })
	settled := func() int {
		n := goruntime.NumGoroutine()
		testutil.Within(time.Second, func() bool { n = goruntime.NumGoroutine(); return false })
		return n
	}
	before := settled()
	const n = 50
	exits := make(chan runtime.ExitStatus, 2*n)
	var cs []runtime.Container
	for i := range n {
		c, err := cl.Start(ctx, fmt.Sprintf("c%d", i), runtime.StartOptions{BundlePath: bundle})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		t.Cleanup(func() { c.Delete(context.Background(), true) })
		c.Init().OnExit(func(st runtime.ExitStatus) { exits <- st })
		if err := c.OnOOM(func() {}); err != nil {
			t.Fatal(err)
		}
		p, err := c.Exec(ctx, runtime.ProcessSpec{Args: []string{"sleep", "300"}})
		if err != nil {
			t.Fatal(err)
		}
		p.OnExit(func(st runtime.ExitStatus) { exits <- st })
	}
	if after := settled(); after > before+5 {
		t.Errorf("%d goroutines with %d more containers and processes watched, %d before", after, n, before)
	}
	for _, c := range cs {
		if err := c.Signal(c.Init().Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 * n {
		if st := testutil.ReceiveWithin(t, time.Minute, "an exit", exits); st.Signal != syscall.SIGKILL {
			t.Errorf("exit %+v, want killed", st)
		}
	}
}

// BenchmarkStart is one start of a real container, directly on the
// runtime and through a client and server over a socketpair; the delete is
// not counted.
//
//	go test -tags 'seccomp nomsgpack' -run '^$' -bench Start -benchtime 50x ./runtime/remote/
func BenchmarkStart(b *testing.B) {
	for _, via := range []string{"direct", "remote"} {
		b.Run(via, func(b *testing.B) {
			e := shared.New(b, troupetest.Options{Name: "bench"})
			var rt runtime.Runtime = e.Runtime
			if via == "remote" {
				rt = serve(b, e.Runtime)
			}
			bundle := e.Bundle(b, "bench")
			ctx := context.Background()
			i := 0
			for b.Loop() {
				c, err := rt.Start(ctx, fmt.Sprintf("b%d", i), runtime.StartOptions{BundlePath: bundle})
				if err != nil {
					b.Fatal(err)
				}
				i++
				b.StopTimer()
				dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				if err := c.Delete(dctx, true); err != nil {
					b.Fatal(err)
				}
				cancel()
				b.StartTimer()
			}
		})
	}
}

// TestStartJoin: the namespaces a start joins cross to the engine, and the
// engine's runtime checks the joined init as the in-process one does.
func TestStartJoin(t *testing.T) {
	e := shared.New(t, troupetest.Options{Name: "join"})
	cl := serve(t, e.Runtime)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sandbox, err := cl.Start(ctx, "sandbox", runtime.StartOptions{BundlePath: e.Bundle(t, "sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.Delete(context.Background(), true) })
	bundle := e.BundleWith(t, "joiner", busybox.Options{Args: []string{"sleep", "60"}, NoHostname: true})
	pid := sandbox.Init().Pid()
	for _, tc := range []struct {
		name    string
		join    runtime.Join
		wantErr error
	}{
		{"network", runtime.Join{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid}, nil},
		{"another pid", runtime.Join{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid + 1}, errclass.FailedPrecondition},
		{"network by path", runtime.Join{Namespace: runtime.NetworkNamespace, Path: fmt.Sprintf("/proc/%d/ns/net", pid)}, nil},
		{"a path of another type", runtime.Join{Namespace: runtime.NetworkNamespace, Path: fmt.Sprintf("/proc/%d/ns/ipc", pid)}, errclass.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cl.Start(ctx, "joiner", runtime.StartOptions{BundlePath: bundle, Join: []runtime.Join{tc.join}})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("start: %v, want %v", err, tc.wantErr)
				}
				if c != nil {
					c.Delete(context.Background(), true)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Delete(context.Background(), true) })
			if got := c.Joined(); len(got) != 1 || got[0] != tc.join {
				t.Errorf("Joined = %+v, want [%+v]", got, tc.join)
			}
			want, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
			got, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", c.Init().Pid()))
			if err1 != nil || err2 != nil || got != want {
				t.Errorf("joiner's network namespace %s (%v), sandbox's %s (%v)", got, err2, want, err1)
			}
		})
	}
}
