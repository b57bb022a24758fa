package containerlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
)

// open opens a log with small files for a test.
func open(t *testing.T, l Limits) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, l, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

// lines reads the log's lines as "stream content" strings.
func lines(t *testing.T, path string, o ReadOptions) []string {
	t.Helper()
	var out []string
	if err := Read(path, o, func(l Line) error {
		s := l.Stream.String() + " " + string(l.Content)
		if l.Partial {
			s += " (partial)"
		}
		out = append(out, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func diskBytes(path string) int64 {
	var n int64
	for _, f := range Files(path) {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func TestRotationBoundsTheLogAndTailReadsAcrossFiles(t *testing.T) {
	l := Limits{MaxSize: MinMaxSize, MaxFiles: 3}
	w, path := open(t, l)
	var scratch []byte
	var err error
	const n = 20000
	for i := range n {
		// Lines arrive in chunks that do not end where lines do.
		chunk := fmt.Sprintf("line %05d with some padding to make it longer\n", i)
		if scratch, err = w.Write(scratch, Stdout, []byte(chunk), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if got, limit := diskBytes(path), l.MaxSize*int64(l.MaxFiles); got > limit {
		t.Errorf("%d bytes on disk, limit %d", got, limit)
	}
	if files := Files(path); len(files) != 3 {
		t.Errorf("files %v, want 3", files)
	}
	got := lines(t, path, ReadOptions{Tail: 5})
	var want []string
	for i := n - 5; i < n; i++ {
		want = append(want, fmt.Sprintf("stdout line %05d with some padding to make it longer", i))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tail 5:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A tail longer than the newest file reaches into the older ones.
	if got := lines(t, path, ReadOptions{Tail: 1000}); len(got) != 1000 || !strings.HasSuffix(got[999], fmt.Sprintf("%05d with some padding to make it longer", n-1)) {
		t.Errorf("tail 1000: %d lines, last %q", len(got), got[len(got)-1])
	}
	// The oldest kept line is not line 0: the log is bounded.
	all := lines(t, path, ReadOptions{})
	if strings.Contains(all[0], "line 00000 ") {
		t.Error("the oldest line was kept")
	}
}

func TestPartialAndLongLinesAndStreams(t *testing.T) {
	w, path := open(t, Limits{})
	long := strings.Repeat("x", 3*MaxLine+10)
	var scratch []byte
	for _, c := range []struct {
		s Stream
		p string
	}{
		{Stdout, "ab"},
		{Stderr, "err 1\nerr"},
		{Stdout, "c\n"},
		{Stdout, long + "\n"},
		{Stderr, " 2\n"},
		{Stdout, "no newline yet"},
	} {
		var err error
		if scratch, err = w.Write(scratch, c.s, []byte(c.p), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	got := lines(t, path, ReadOptions{})
	want := []string{"stderr err 1", "stdout abc", "stdout " + long, "stderr err 2", "stdout no newline yet (partial)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines:\n%.200q\nwant\n%.200q", got, want)
	}
}

func TestSince(t *testing.T) {
	w, path := open(t, Limits{})
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	var scratch []byte
	for i := range 10 {
		scratch, _ = w.Write(scratch, Stdout, []byte(fmt.Sprintf("%d\n", i)), t0.Add(time.Duration(i)*time.Second))
	}
	got := lines(t, path, ReadOptions{Since: t0.Add(7 * time.Second)})
	if want := []string{"stdout 7", "stdout 8", "stdout 9"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("since: %v, want %v", got, want)
	}
	got = lines(t, path, ReadOptions{Since: t0.Add(5 * time.Second), Tail: 2})
	if want := []string{"stdout 8", "stdout 9"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("since and tail: %v, want %v", got, want)
	}
}

func TestFollowSeesLinesAfterRotations(t *testing.T) {
	w, path := open(t, Limits{MaxSize: MinMaxSize, MaxFiles: 2})
	var scratch []byte
	write := func(i int) {
		var err error
		if scratch, err = w.Write(scratch, Stdout, []byte(fmt.Sprintf("line %06d %s\n", i, strings.Repeat("y", 100))), time.Now()); err != nil {
			t.Error(err)
		}
	}
	write(0)
	var mu sync.Mutex
	var got []string
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Follow(context.Background(), path, ReadOptions{}, func() bool {
			select {
			case <-stop:
				return true
			default:
				return false
			}
		}, func(l Line) error {
			mu.Lock()
			got = append(got, string(l.Content[:11]))
			mu.Unlock()
			return nil
		})
	}()
	followed := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n
		}
	}
	// No faster than the reader reads, so that nothing rotates out
	// unread: 2000 lines of 140 bytes are four rotations of 64 KiB.
	for i := 1; i < 2000; i++ {
		write(i)
		if i%200 == 0 {
			testutil.EventuallyWithin(t, 5*time.Second, fmt.Sprintf("the reader to follow %d lines", i+1), followed(i+1))
		}
	}
	testutil.EventuallyWithin(t, 5*time.Second, "the reader to follow every line", followed(2000))
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return once done")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2000 {
		t.Fatalf("followed %d lines, want 2000 (first %q, last %q)", len(got), got[0], got[len(got)-1])
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %06d", i); l != want {
			t.Fatalf("line %d is %q, want %q", i, l, want)
		}
	}
}

func TestOpenRefusesASymlinkAndFreshClears(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "c.log")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	// Appending, a symlink is refused; a fresh log replaces it with a file
	// of its own. Either way its target is untouched.
	if _, err := Open(link, Limits{}, false); err == nil {
		t.Error("a symlink was opened as a log")
	}
	w, err := Open(link, Limits{}, true)
	if err != nil {
		t.Fatalf("a fresh log over a symlink: %v", err)
	}
	w.Close()
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a fresh log over a symlink is %v, %v; want a regular file", fi, err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Errorf("the symlink's target was changed: %q", data)
	}
	path := filepath.Join(dir, "d.log")
	for _, f := range []string{path, path + ".1", path + ".2"} {
		if err := os.WriteFile(f, []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w, err = Open(path, Limits{}, true)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if files := Files(path); len(files) != 1 || diskBytes(path) != 0 {
		t.Errorf("a fresh log keeps %v (%d bytes)", files, diskBytes(path))
	}
	if err := Remove(path); err != nil || len(Files(path)) != 0 {
		t.Errorf("Remove: %v, left %v", err, Files(path))
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		l  Limits
		ok bool
	}{
		{Limits{}, true},
		{Limits{MaxSize: MinMaxSize, MaxFiles: 1}, true},
		{Limits{MaxSize: 1}, false},
		{Limits{MaxFiles: -1}, false},
		{Limits{MaxFiles: MaxMaxFiles + 1}, false},
	} {
		if err := tc.l.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v", tc.l, err)
		}
	}
	if got := (Limits{}).WithDefaults(Limits{MaxFiles: 5}); got.MaxSize != DefaultMaxSize || got.MaxFiles != 5 {
		t.Errorf("defaults: %+v", got)
	}
}
