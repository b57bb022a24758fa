package testutil

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		name    string
		trueAt  int32 // the try at which cond starts to hold; 0: never
		timeout time.Duration
		want    bool
	}{
		{"at once", 1, time.Second, true},
		{"after some tries", 5, time.Second, true},
		{"never", 0, 50 * time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			got := Within(tc.timeout, func() bool {
				n := tries.Add(1)
				return tc.trueAt != 0 && n >= tc.trueAt
			})
			if got != tc.want {
				t.Errorf("Within = %v after %d tries, want %v", got, tries.Load(), tc.want)
			}
		})
	}
}

func TestReceive(t *testing.T) {
	c := make(chan int, 1)
	c <- 7
	if got := Receive(t, "a value", c); got != 7 {
		t.Errorf("Receive = %d, want 7", got)
	}
}

func TestDone(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	Done(t, "a closed channel", closed)
	sent := make(chan int, 1)
	sent <- 1
	DoneWithin(t, time.Second, "a value", sent)
}

func TestRequired(t *testing.T) {
	if v := Required(t, "github.com/opencontainers/runc"); !strings.HasPrefix(v, "v1.") {
		t.Errorf("Required(runc) = %q, want the v1 go.mod requires", v)
	}
}
