package testutil

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r) // Fatalf does not return
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name     string
		trueFrom int32 // the call from which cond holds; 0 never
		fail     bool
	}{
		{"holds at once", 1, false},
		{"holds later", 5, false},
		{"never holds", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			var calls atomic.Int32
			func() {
				defer func() {
					if p := recover(); p != nil && p != r {
						panic(p)
					}
				}()
				Eventually(r, 100*time.Millisecond, func() bool {
					n := calls.Add(1)
					return tc.trueFrom != 0 && n >= tc.trueFrom
				}, "the thing")
			}()
			if failed := r.failed != ""; failed != tc.fail {
				t.Fatalf("failed = %v (%q), want %v", failed, r.failed, tc.fail)
			}
			if tc.fail && !strings.Contains(r.failed, "waiting for %s") {
				t.Errorf("message %q does not name what was awaited", r.failed)
			}
			if !tc.fail && calls.Load() != tc.trueFrom {
				t.Errorf("cond called %d times, want %d", calls.Load(), tc.trueFrom)
			}
		})
	}
}
