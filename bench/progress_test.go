package bench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name                string
		done, total, failed int
		elapsed             time.Duration
		want                string
	}{
		{"start", 0, 1000, 0, 0, "\rtroupe [>                             ] 0/1000  fail 0  0/s\x1b[K"},
		{"half", 512, 1000, 3, 4 * time.Second, "\rtroupe [===============>              ] 512/1000  fail 3  128/s\x1b[K"},
		{"almost", 999, 1000, 0, 10 * time.Second, "\rtroupe [=============================>] 999/1000  fail 0  100/s\x1b[K"},
		{"done", 1000, 1000, 0, 5 * time.Second, "\rtroupe [==============================] 1000/1000  fail 0  200/s\x1b[K"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := progressLine("troupe", tc.done, tc.total, tc.failed, tc.elapsed); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestProgressOnlyOnTerminals(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if isTerminalWriter(nil) || isTerminalWriter(&buf) || isTerminalWriter(f) {
		t.Error("a buffer or a regular file counted as a terminal")
	}
	// A run with a non-terminal writer draws nothing.
	if _, err := Run(testContext(t), &fakeTarget{}, Options{N: 20, Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("progress written to a buffer: %q", buf.String())
	}

	// A pseudo-terminal is a terminal: the bar is drawn, and ends its line.
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	if !isTerminalWriter(pts) {
		t.Fatal("a pseudo-terminal is not a terminal")
	}
	out := make(chan string)
	go func() {
		var all strings.Builder
		b := make([]byte, 4096)
		for {
			k, err := ptm.Read(b)
			all.Write(b[:k])
			if err != nil || strings.Contains(all.String(), "\n") {
				out <- all.String()
				return
			}
		}
	}()
	if _, err := Run(testContext(t), &fakeTarget{delay: constant(150 * time.Millisecond)}, Options{N: 4, Progress: pts}); err != nil {
		t.Fatal(err)
	}
	got := <-out
	if !strings.Contains(got, "\rfake [") || !strings.Contains(got, "4/4  fail 0") {
		t.Errorf("terminal got %q, want a bar ending at 4/4", got)
	}
}
