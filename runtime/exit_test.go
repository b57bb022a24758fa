package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExit(t *testing.T) {
	st := ExitStatus{Code: 3}
	tests := []struct {
		name string
		run  func(t *testing.T, e *Exit)
	}{
		{"callbacks registered before are returned by Finish, once", func(t *testing.T, e *Exit) {
			got := 0
			e.OnExit(func(s ExitStatus) { got += s.Code })
			e.OnExit(func(s ExitStatus) { got += s.Code })
			for _, fn := range e.Finish(st) {
				fn(st)
			}
			if got != 6 {
				t.Errorf("callbacks saw %d, want 6", got)
			}
			if fns := e.Finish(ExitStatus{Code: 9}); fns != nil || e.Status() != st {
				t.Errorf("a second Finish returned %d callbacks and left status %v", len(fns), e.Status())
			}
		}},
		{"a callback registered after runs on its own goroutine", func(t *testing.T, e *Exit) {
			e.Finish(st)
			got := make(chan ExitStatus, 1)
			e.OnExit(func(s ExitStatus) { got <- s })
			select {
			case s := <-got:
				if s != st {
					t.Errorf("late callback saw %v", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the late callback never ran")
			}
		}},
		{"the exit wins over a ctx already done", func(t *testing.T, e *Exit) {
			e.Finish(st)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if s, err := e.Wait(ctx); err != nil || s != st || !e.Exited() {
				t.Errorf("Wait = %v, %v", s, err)
			}
		}},
		{"Wait without an exit ends with ctx", func(t *testing.T, e *Exit) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := e.Wait(ctx); !errors.Is(err, context.Canceled) || e.Exited() || e.Status() != (ExitStatus{}) {
				t.Errorf("Wait = %v; exited %v", err, e.Exited())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, NewExit()) })
	}
}
