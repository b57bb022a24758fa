package actors

import (
	"context"
	"time"
)

// admission bounds how many starts run at once. Starts beyond the bound wait
// in arrival order: a Go channel serves blocked senders first in, first out.
// On a 2-core machine more than a few concurrent starts add only latency
// (each is CPU-bound in the kernel's cgroup and mount work), so a burst of
// 1000 requests is admitted a few at a time instead of thrashing.
type admission struct {
	slots chan struct{}
}

func newAdmission(limit int) *admission {
	if limit < 1 {
		limit = 1
	}
	return &admission{slots: make(chan struct{}, limit)}
}

// acquire waits for a slot and returns how long it waited; the wait counts
// in the latency a client sees and is reported, not hidden.
func (a *admission) acquire(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	select {
	case a.slots <- struct{}{}:
		return time.Since(t0), nil
	case <-ctx.Done():
		return time.Since(t0), ctx.Err()
	}
}

// release frees a slot taken by acquire.
func (a *admission) release() { <-a.slots }
