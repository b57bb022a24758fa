package linux

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

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
