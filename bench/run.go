package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// MaxErrors is how many start errors a Result keeps: the first ones tell
// what went wrong, a thousand copies of the same message do not.
const MaxErrors = 5

// Options shape one run of the workload.
type Options struct {
	// N is how many containers to start; default 1000.
	N int
	// Concurrency is how many starts are in flight at most. Zero, or N and
	// more, means all N at once: every start is launched up front and
	// released together.
	Concurrency int
	// Bundle is the absolute path of the OCI bundle every container starts
	// from, handed to the target's Setup.
	Bundle string
	// IDPrefix starts every container id; default "bench-". The ids are
	// the prefix and a zero-padded index.
	IDPrefix string
	// Progress, when it is a terminal, gets a progress bar redrawn on one
	// line; anything else (nil, a pipe, a file) gets nothing.
	Progress io.Writer
	// Density measures the target's memory per running container once all
	// starts are done, before the teardown, and its idle memory before the
	// first start.
	Density bool
	// Settle is how long the target is left alone before each density
	// measurement, so that what is measured is what it holds, not the
	// garbage of a burst of requests it has not given back yet (troupe's
	// daemon returns it after 5–10 s of quiet). Default DefaultSettle; a
	// negative value measures at once.
	Settle time.Duration
}

// DefaultN is the reference's workload size.
const DefaultN = 1000

// DefaultSettle is how long a target is left alone before a density
// measurement.
const DefaultSettle = 12 * time.Second

// quiescer is a target with something of the run's own to stop before its
// memory is measured: a client's idle connections (a goroutine and buffers
// each in troupe's daemon), a warm pool refilling.
type quiescer interface{ quiesce(ctx context.Context) }

// settle waits d, or until ctx ends.
func settle(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// DefaultIDPrefix starts the ids of the benchmark's containers.
const DefaultIDPrefix = "bench-"

// StartError is one failed start.
type StartError struct {
	// ID is the container's id.
	ID string
	// Err is what the target's Start returned.
	Err error
}

// Error returns the container's id and the target's message.
func (e StartError) Error() string { return e.ID + ": " + e.Err.Error() }

// Result is what one run of the workload on one target measured.
type Result struct {
	// Target is the target's name.
	Target string
	// N and Concurrency are the workload (Concurrency resolved: N when all
	// start at once).
	N, Concurrency int
	// Latencies are the successful starts' latencies as the client saw
	// them, in the order the starts were launched.
	Latencies []time.Duration
	// Summary summarises Latencies.
	Summary Summary
	// Attempted is how many starts were launched: N unless the run was
	// interrupted.
	Attempted int
	// Failures is how many starts failed; Errors are the first MaxErrors of
	// them, in the order they failed.
	Failures int
	Errors   []StartError
	// Wall is the time from releasing the first start to the end of the
	// last.
	Wall time.Duration
	// PerSecond is successful starts per second of Wall.
	PerSecond float64
	// CPU is the CPU time the whole machine spent (every process, user and
	// system) during Wall; CPU / successes is the cost of a start, the
	// bench client's share included. Zero when /proc/stat is unreadable.
	CPU time.Duration
	// ProcCPU is the CPU time the target's own processes (OverheadPids) and
	// their descendants, its containers included, spent during Wall: the
	// cost of a start without the bench client, kernel workers or anything
	// else on the machine. Zero for targets that name no processes.
	ProcCPU time.Duration
	// Density is the target's memory at peak; nil unless asked for.
	Density *Density
	// Teardown is how long the target's Teardown took, and TeardownErr what
	// it returned.
	Teardown    time.Duration
	TeardownErr error
	// Runs, when the Result is the median of several runs (MedianOf), are
	// each run's headline figures, in order.
	Runs []RunFigures
}

// ProcCPUPerStart is ProcCPU per successful start, or zero.
func (r *Result) ProcCPUPerStart() time.Duration {
	if r.Summary.Count == 0 {
		return 0
	}
	return r.ProcCPU / time.Duration(r.Summary.Count)
}

// Successes is how many starts succeeded.
func (r *Result) Successes() int { return r.Summary.Count }

// CPUPerStart is the machine's CPU time per successful start, or zero.
func (r *Result) CPUPerStart() time.Duration {
	if r.Summary.Count == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Summary.Count)
}

// Run sets target up with opts.Bundle, starts opts.N containers at most
// opts.Concurrency at a time, measures the target's memory if asked, and
// tears everything down. Each start is timed from the call to the target's
// Start to its return: for troupe, from sending the request to receiving
// the 201 with the container running.
//
// A failed start is counted and the run goes on. Run returns an error when
// the target cannot be set up or ctx ends; in the latter case the Result of
// the starts made so far comes with it, and the teardown still runs (on a
// context of its own, so that an interrupted run leaves nothing behind).
func Run(ctx context.Context, target Target, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	if err := target.Setup(ctx, opts.Bundle); err != nil {
		// Setup may have made something (a private daemon) before it
		// failed.
		_ = target.Teardown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%s: set up: %w", target.Name(), err)
	}
	res := &Result{Target: target.Name(), N: opts.N, Concurrency: opts.Concurrency}
	var idle *rollup
	if opts.Density {
		// Best effort: a target whose overhead processes appear only with
		// its containers (shims) has an idle figure of its daemon alone,
		// or none.
		settle(ctx, opts.Settle)
		if _, m, err := overheadMemory(ctx, target); err == nil {
			idle = &m
		}
	}
	runStarts(ctx, target, opts, res)
	runErr := ctx.Err()
	if opts.Density && runErr == nil {
		if q, ok := target.(quiescer); ok {
			q.quiesce(ctx)
		}
		settle(ctx, opts.Settle)
		res.Density = measureDensity(ctx, target, res.Successes(), idle)
	}
	// The teardown is part of what is measured and must happen even after
	// an interruption.
	tctx := context.WithoutCancel(ctx)
	t0 := time.Now()
	res.TeardownErr = target.Teardown(tctx)
	res.Teardown = time.Since(t0)
	if runErr != nil {
		return res, fmt.Errorf("%s: interrupted after %d of %d starts: %w", res.Target, res.Attempted, res.N, runErr)
	}
	return res, nil
}

func (o Options) withDefaults() Options {
	if o.N <= 0 {
		o.N = DefaultN
	}
	if o.Concurrency <= 0 || o.Concurrency > o.N {
		o.Concurrency = o.N
	}
	if o.IDPrefix == "" {
		o.IDPrefix = DefaultIDPrefix
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	return o
}

// ContainerID is the id of the i-th container of a run of n: prefix and i
// zero-padded to the width of n-1, so that ids sort in launch order.
func ContainerID(prefix string, i, n int) string {
	return fmt.Sprintf("%s%0*d", prefix, len(fmt.Sprint(max(n-1, 0))), i)
}

// runStarts makes the starts and fills res's starts, failures, wall time
// and rate.
//
// Concurrency workers each take the next index until all N are taken, so at
// most Concurrency starts are in flight; with Concurrency == N that is one
// start per goroutine. Every worker first parks on a barrier, and the clock
// starts when all are parked and the barrier opens: the burst is as
// simultaneous as the scheduler allows, and goroutine creation is not
// counted.
func runStarts(ctx context.Context, target Target, opts Options, res *Result) {
	n := opts.N
	latencies := make([]time.Duration, n)
	ok := make([]bool, n)
	var (
		next      atomic.Int64 // the next index to start
		done      atomic.Int64 // starts finished, successes and failures
		failed    atomic.Int64
		attempted atomic.Int64
		mu        sync.Mutex // guards res.Errors
		parked    sync.WaitGroup
		finished  sync.WaitGroup
	)
	barrier := make(chan struct{})
	for range opts.Concurrency {
		parked.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			parked.Done()
			<-barrier
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				attempted.Add(1)
				id := ContainerID(opts.IDPrefix, i, n)
				t0 := time.Now()
				err := target.Start(ctx, id)
				lat := time.Since(t0)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(res.Errors) < MaxErrors {
						res.Errors = append(res.Errors, StartError{ID: id, Err: err})
					}
					mu.Unlock()
				} else {
					latencies[i], ok[i] = lat, true
				}
				done.Add(1)
			}
		}()
	}
	parked.Wait()

	bar := newProgressBar(opts.Progress, target.Name(), n)
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	proc0, procErr := targetCPU(ctx, target)
	cpu0, cpuErr := readCPUTime()
	t0 := time.Now()
	close(barrier)
	go func() {
		defer close(barDone)
		bar.run(stopBar, t0, func() (int, int) { return int(done.Load()), int(failed.Load()) })
	}()
	finished.Wait()
	res.Wall = time.Since(t0)
	cpu1, cpuErr1 := readCPUTime()
	proc1, procErr1 := targetCPU(ctx, target)
	close(stopBar)
	<-barDone
	if procErr == nil && procErr1 == nil {
		res.ProcCPU = proc1 - proc0
	}

	if cpuErr == nil && cpuErr1 == nil {
		res.CPU = cpu1 - cpu0
	}
	res.Attempted = int(attempted.Load())
	res.Failures = int(failed.Load())
	for i := range n {
		if ok[i] {
			res.Latencies = append(res.Latencies, latencies[i])
		}
	}
	res.Summary = Summarize(res.Latencies)
	if res.Wall > 0 {
		res.PerSecond = float64(res.Summary.Count) / res.Wall.Seconds()
	}
}

// targetCPU is the CPU time of the target's processes and their
// descendants so far (treeCPU); an error when it names none.
func targetCPU(ctx context.Context, target Target) (time.Duration, error) {
	pids, err := target.OverheadPids(ctx)
	if err != nil {
		return 0, err
	}
	if len(pids) == 0 {
		return 0, errNoOverhead
	}
	return treeCPU("/proc", pids)
}

// errNoOverhead is the density note of a target that names no processes.
var errNoOverhead = errors.New("the target names no overhead processes")

// overheadMemory sums the memory of the target's overhead processes.
func overheadMemory(ctx context.Context, target Target) ([]int, rollup, error) {
	var sum rollup
	pids, err := target.OverheadPids(ctx)
	if err == nil && len(pids) == 0 {
		err = errNoOverhead
	}
	if err != nil {
		return nil, sum, err
	}
	for _, pid := range pids {
		m, err := readRollup(pid)
		if err != nil {
			return nil, sum, err
		}
		sum.RSS += m.RSS
		sum.PSS += m.PSS
		sum.Threads += m.Threads
	}
	return pids, sum, nil
}

// measureDensity is the target's memory with running containers up, and
// its idle memory if known.
func measureDensity(ctx context.Context, target Target, running int, idle *rollup) *Density {
	d := &Density{Containers: running}
	pids, m, err := overheadMemory(ctx, target)
	if err != nil {
		d.Note = err.Error()
		return d
	}
	d.Pids, d.RSS, d.PSS, d.Threads = pids, m.RSS, m.PSS, m.Threads
	if idle != nil {
		d.IdleKnown, d.IdleRSS, d.IdlePSS, d.IdleThreads = true, idle.RSS, idle.PSS, idle.Threads
	}
	return d
}
