package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of start latencies the way the reference's
// go-metrics timer did (the original containerd's, Dec 2015), so that the
// two tables can be read side by side: the population standard deviation,
// and percentiles interpolated at position p·(n+1) of the sorted values.
type Summary struct {
	// Count is the number of latencies.
	Count int
	// Min and Max are the extremes.
	Min, Max time.Duration
	// Mean is the arithmetic mean, rounded to the nanosecond.
	Mean time.Duration
	// Stddev is the population standard deviation (divided by n, not n-1).
	Stddev time.Duration
	// Median is the 50th percentile.
	Median time.Duration
	// P75, P95, P99 and P999 are the 75th, 95th, 99th and 99.9th
	// percentiles.
	P75, P95, P99, P999 time.Duration
}

// Summarize returns the Summary of ds, which it does not modify. An empty
// ds gives the zero Summary.
func Summarize(ds []time.Duration) Summary {
	n := len(ds)
	if n == 0 {
		return Summary{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	// go-metrics sums in int64 and divides as float64; a thousand starts of
	// an hour each are still far from overflowing.
	var sum int64
	for _, d := range sorted {
		sum += int64(d)
	}
	mean := float64(sum) / float64(n)
	var sq float64
	for _, d := range sorted {
		dev := float64(d) - mean
		sq += dev * dev
	}
	return Summary{
		Count:  n,
		Min:    sorted[0],
		Max:    sorted[n-1],
		Mean:   roundNs(mean),
		Stddev: roundNs(math.Sqrt(sq / float64(n))),
		Median: percentile(sorted, 0.5),
		P75:    percentile(sorted, 0.75),
		P95:    percentile(sorted, 0.95),
		P99:    percentile(sorted, 0.99),
		P999:   percentile(sorted, 0.999),
	}
}

// percentile is go-metrics' SamplePercentiles for one p over sorted values:
// the value at position p·(n+1) (1-based), interpolated linearly between
// its neighbours, clamped to the extremes.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	pos := p * float64(n+1)
	switch {
	case pos < 1:
		return sorted[0]
	case pos >= float64(n):
		return sorted[n-1]
	}
	lower := float64(sorted[int(pos)-1])
	upper := float64(sorted[int(pos)])
	return roundNs(lower + (pos-math.Floor(pos))*(upper-lower))
}

func roundNs(ns float64) time.Duration { return time.Duration(math.Round(ns)) }
