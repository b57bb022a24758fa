package testutil

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually checks its condition.
const pollInterval = 5 * time.Millisecond

// Eventually checks cond until it holds and fails t with Fatalf, naming
// what it waited for, if timeout passes first. cond is checked at once, then
// every few milliseconds, and once more at the deadline. Call it from the
// test's own goroutine (Fatalf ends it).
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}
