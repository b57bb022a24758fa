// Package memory gives a process's free memory back to the kernel once it
// has gone quiet after a burst: the daemon's and the engine's policy.
package memory

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// A burst of starts leaves the daemon (and its engine) with tens of MiB of garbage and free
// heap it no longer needs: the containers need far less once running (a few
// tens of KiB each), but Go collects only when the heap grows again and
// returns free memory to the kernel only below its last goal, so an idle
// daemon keeps its peak for minutes. Once the daemon has gone quiet after
// allocating a lot, it collects and gives the memory back at once.
const (
	memoryCheckEvery = 5 * time.Second
	// quietBelow is what the daemon may allocate in one check period and
	// still count as quiet (requests, stats, events still trickle in).
	quietBelow = 4 << 20
	// worthAbove is how much it must have allocated since the last return
	// for another to be worth a collection.
	worthAbove = 32 << 20
)

// shouldReturnMemory is the policy: quiet now, after enough allocation.
func shouldReturnMemory(allocatedLastPeriod, allocatedSinceReturn uint64) bool {
	return allocatedLastPeriod < quietBelow && allocatedSinceReturn >= worthAbove
}

// ReturnWhenQuiet applies the policy every memoryCheckEvery until ctx
// ends.
func ReturnWhenQuiet(ctx context.Context, logger *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	last := allocated()
	lastReturn := last
	tick := time.NewTicker(memoryCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := allocated()
		if shouldReturnMemory(now-last, now-lastReturn) {
			t0 := time.Now()
			// Two collections: the first only moves what sync.Pools hold
			// (net/http's buffers of a thousand finished connections) to
			// their victim caches; the second frees it, and FreeOSMemory's
			// own collection returns it all.
			runtime.GC()
			debug.FreeOSMemory()
			logger.Debug("returned free memory after a busy period", "allocated_mib", (now-lastReturn)>>20, "took", time.Since(t0))
			now = allocated()
			lastReturn = now
		}
		last = now
	}
}
