package bench

import (
	"fmt"
	"slices"
	"time"
)

// MedianOf combines runs of the same workload on one target into one
// Result whose figures are the medians of the runs' figures, each taken on
// its own (the median's 99% is the median of the runs' 99%). Failures and
// attempts add up, errors are the first runs' first ones, latencies are all
// of them (for the plot), and Runs lists what each run did.
func MedianOf(runs []*Result) *Result {
	if len(runs) == 1 {
		return runs[0]
	}
	first := runs[0]
	m := &Result{Target: first.Target, N: first.N, Concurrency: first.Concurrency}
	med := func(get func(*Result) time.Duration) time.Duration {
		return medianOf(runs, get)
	}
	s := &m.Summary
	s.Count = int(med(func(r *Result) time.Duration { return time.Duration(r.Summary.Count) }))
	s.Min = med(func(r *Result) time.Duration { return r.Summary.Min })
	s.Max = med(func(r *Result) time.Duration { return r.Summary.Max })
	s.Mean = med(func(r *Result) time.Duration { return r.Summary.Mean })
	s.Stddev = med(func(r *Result) time.Duration { return r.Summary.Stddev })
	s.Median = med(func(r *Result) time.Duration { return r.Summary.Median })
	s.P75 = med(func(r *Result) time.Duration { return r.Summary.P75 })
	s.P95 = med(func(r *Result) time.Duration { return r.Summary.P95 })
	s.P99 = med(func(r *Result) time.Duration { return r.Summary.P99 })
	s.P999 = med(func(r *Result) time.Duration { return r.Summary.P999 })
	m.Wall = med(func(r *Result) time.Duration { return r.Wall })
	m.CPU = med(func(r *Result) time.Duration {
		// The median CPU per start, scaled back to the median count.
		if r.Summary.Count == 0 {
			return 0
		}
		return r.CPU / time.Duration(r.Summary.Count) * time.Duration(max(s.Count, 1))
	})
	m.ProcCPU = med(func(r *Result) time.Duration {
		if r.Summary.Count == 0 {
			return 0
		}
		return r.ProcCPU / time.Duration(r.Summary.Count) * time.Duration(max(s.Count, 1))
	})
	m.Teardown = med(func(r *Result) time.Duration { return r.Teardown })
	ps := make([]float64, len(runs))
	for i, r := range runs {
		ps[i] = r.PerSecond
		m.Attempted += r.Attempted
		m.Failures += r.Failures
		m.Latencies = append(m.Latencies, r.Latencies...)
		if len(m.Errors) < MaxErrors {
			m.Errors = append(m.Errors, r.Errors[:min(len(r.Errors), MaxErrors-len(m.Errors))]...)
		}
		if m.TeardownErr == nil {
			m.TeardownErr = r.TeardownErr
		}
		m.Runs = append(m.Runs, RunFigures{PerSecond: r.PerSecond, Median: r.Summary.Median, P99: r.Summary.P99, CPUPerStart: r.CPUPerStart()})
	}
	slices.Sort(ps)
	m.PerSecond = ps[len(ps)/2]
	if len(ps)%2 == 0 {
		m.PerSecond = (ps[len(ps)/2-1] + ps[len(ps)/2]) / 2
	}
	m.Density = medianDensity(runs)
	return m
}

// RunFigures are the headline figures of one run of several.
type RunFigures struct {
	PerSecond   float64       `json:"containersPerSecond"`
	Median      time.Duration `json:"medianNs"`
	P99         time.Duration `json:"p99Ns"`
	CPUPerStart time.Duration `json:"cpuPerStartNs"`
}

// String is the figures in the report's units.
func (f RunFigures) String() string {
	return fmt.Sprintf("%.1f/s median %s p99 %s cpu %.1fms", f.PerSecond, wholeMs(f.Median), wholeMs(f.P99),
		float64(f.CPUPerStart)/float64(time.Millisecond))
}

func medianOf(runs []*Result, get func(*Result) time.Duration) time.Duration {
	v := make([]time.Duration, len(runs))
	for i, r := range runs {
		v[i] = get(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medianDensity is the density of the run with the median PSS per running
// container: memory figures only make sense together.
func medianDensity(runs []*Result) *Density {
	var measured []*Density
	for _, r := range runs {
		if r.Density.Measured() {
			measured = append(measured, r.Density)
		}
	}
	if len(measured) == 0 {
		return runs[0].Density
	}
	slices.SortFunc(measured, func(a, b *Density) int {
		switch x, y := a.PSSPerContainer(), b.PSSPerContainer(); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return measured[len(measured)/2]
}
