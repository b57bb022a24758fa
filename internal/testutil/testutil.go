// Package testutil holds the waiting that troupe's tests share: every test
// waits for a condition with a deadline of its own, far below go test's
// -timeout, and a failure names what did not happen. Nothing orders events
// by sleeping. It also measures disk usage as du does, for the tests of
// what images share.
//
// It imports only the standard library.
package testutil

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Timeout is how long Eventually waits unless told otherwise: long enough
// for a loaded machine running the whole suite, far below go test's
// -timeout.
const Timeout = 20 * time.Second

// poll is how often a condition is tried again.
const poll = 5 * time.Millisecond

// Eventually waits until cond holds, trying it every few milliseconds, and
// fails the test with "timed out waiting for WHAT" after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin is Eventually with its own deadline.
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Within reports whether cond held within timeout, for a test that has
// more to say than Eventually when it did not.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(poll)
	}
	return true
}

// Receive returns the next value of c, failing the test if none comes
// within Timeout or c is closed.
func Receive[T any](t testing.TB, what string, c <-chan T) T {
	t.Helper()
	return ReceiveWithin(t, Timeout, what, c)
}

// ReceiveWithin is Receive with its own deadline.
func ReceiveWithin[T any](t testing.TB, timeout time.Duration, what string, c <-chan T) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v, ok := <-c:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	var zero T
	return zero
}

// Done waits until c is closed or yields a value, whichever comes first,
// failing the test after Timeout: for a channel closed to say that
// something happened.
func Done[T any](t testing.TB, what string, c <-chan T) {
	t.Helper()
	DoneWithin(t, Timeout, what, c)
}

// DoneWithin is Done with its own deadline.
func DoneWithin[T any](t testing.TB, timeout time.Duration, what string, c <-chan T) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c:
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// DiskUsage is the space the files under dir take on disk, as du counts
// it: hard links once, and nothing below a mount point (the containers'
// overlays show the layers again).
func DiskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var root syscall.Stat_t
	if err := syscall.Lstat(dir, &root); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		if st.Dev != root.Dev {
			return fs.SkipDir
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}
