package actors

import (
	"context"
	"sync/atomic"
	"time"
)

// admission bounds how many starts run at once. Starts beyond the bound wait
// in arrival order: a Go channel serves blocked senders first in, first out.
// On a 2-core machine more than a few concurrent starts add only latency
// (each is CPU-bound in the kernel's cgroup and mount work), so a burst of
// 1000 requests is admitted a few at a time instead of thrashing.
type admission struct {
	slots chan struct{}
	// queued counts the starts waiting for a slot, so that a test can
	// tell that a burst has reached admission.
	queued atomic.Int64
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
	a.queued.Add(1)
	defer a.queued.Add(-1)
	select {
	case a.slots <- struct{}{}:
		return time.Since(t0), nil
	case <-ctx.Done():
		return time.Since(t0), ctx.Err()
	}
}

// waiting is how many acquires wait for a slot now.
func (a *admission) waiting() int { return int(a.queued.Load()) }

// release frees a slot taken by acquire.
func (a *admission) release() { <-a.slots }
