// Package bench is troupe's load benchmark: start many containers at once,
// time each start as a client sees it, and print the distribution in the
// same table as the reference benchmark troupe set out to beat (the
// original containerd's "1000 containers concurrently", Dec 2015, printed
// by its daemon's go-metrics timer).
//
// # What is measured
//
// A run starts N containers (default 1000) from one OCI bundle (busybox
// sleep with a read-only rootfs shared by all), at most Concurrency at a
// time (default: all N at once). Each start is timed from the moment the
// request leaves to the moment the answer says the container runs: for
// troupe, POST /containers/{id} sent until its 201 with status "running"
// arrives, so the time a request waits in the daemon's admission queue,
// HTTP and JSON are all in it. The reference timed only the start inside a
// worker and so understates what a client saw; here nothing is left out.
//
// Around the starts a run also takes the wall time from the first start to
// the last answer (containers/s is successes divided by it), the CPU time
// the whole machine was busy meanwhile (from /proc/stat; per start it is
// comparable to the reference's "CPU per container"), failures with the
// first errors, optionally the memory of the target's own processes per
// running container (RSS and PSS from /proc/PID/smaps_rollup: troupe's
// daemon; containerd and its shims; also as growth over the same processes'
// idle memory, taken before the first start), and the teardown time.
//
// # How
//
// A Target is a system that starts containers: [Troupe] drives a running
// daemon through the Go client of its API; [TroupeWarm] does the same with
// a warm pool in front (see "Cold and warm"); [NewCompareTarget] builds
// crun, runc and containerd targets that run the same workload through
// their command lines. Those runtimes must be installed beforehand (make
// bench-deps): the benchmark installs nothing, and a target whose runtime
// is missing fails its Setup with the Debian package to install. [Run]
// drives one target:
//
//	t, err := bench.NewTroupe(bench.TroupeOptions{Address: "unix:///run/troupe/troupe.sock"})
//	res, err := bench.Run(ctx, t, bench.Options{N: 1000, Bundle: "/tmp/b", Progress: os.Stderr})
//	bench.WriteReport(os.Stdout, res)
//
// Run launches Concurrency workers that each take the next container until
// N are taken. All workers park on a barrier first and the clock starts
// when it opens, so a burst of 1000 is 1000 requests sent together, not a
// ramp paced by goroutine creation. A workload run several times on one
// target is reported as the median of each figure over the runs
// ([MedianOf]).
//
// # The table
//
// [WriteReport] prints the reference's rows in its order and layout, labels
// padded to 14 columns and latencies in whole milliseconds, then the
// benchmark's own lines:
//
//	troupe: 1000 starts, all at once
//	count:        1000
//	min:          23ms
//	max:          355ms
//	mean:         78ms
//	stddev:       34ms
//	median:       73ms
//	75%:          91ms
//	95%:          123ms
//	99%:          287ms
//	99.9%:        355ms
//	containers/s: 134.2
//	wall:         7.45s
//	cpu/start:    24.3ms
//	failures:     0
//	teardown:     1.23s
//
// The statistics are those of the reference's go-metrics timer ([Summarize]):
// population standard deviation, and percentiles at position p·(n+1) of the
// sorted latencies, interpolated between neighbours. [WriteComparison] puts
// several targets side by side with ratios to troupe; [WriteJSON] is the
// same for programs; [WritePlot] draws the histogram and the cumulative
// distribution as SVG.
//
// In a burst of 1000 at once a client's p99 is essentially the time until
// the last container runs: compare latency at a small concurrency (10, as
// the reference effectively had) and throughput in the burst.
//
// # Cold and warm
//
// The [Troupe] target and the comparison runtimes measure cold starts: each
// a new container from nothing. [TroupeWarm] ("troupe-warm") measures warm
// starts: its Setup asks the daemon for a pool of N prepared containers of
// the bundle and waits until all are ready (the time that takes is its
// Fill, not part of any start); each start is then the same POST, which the
// daemon answers by claiming a prepared container. The pool refills during
// the run, as it would in use, and that work counts in the run's CPU per
// start. Warm and cold are never mixed: a warm target's start that the
// daemon served cold fails with [ErrStartedCold] and counts as a failure,
// and the two are reported as separate columns.
package bench
