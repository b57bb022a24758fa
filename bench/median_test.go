package bench

import (
	"errors"
	"testing"
	"time"
)

func TestMedianOf(t *testing.T) {
	run := func(perSec float64, median, p99 time.Duration, count int, cpu time.Duration, pss uint64, failures int) *Result {
		r := &Result{Target: "troupe", N: 3, Concurrency: 3, Attempted: 3, PerSecond: perSec, CPU: cpu, Failures: failures,
			Summary: Summary{Count: count, Median: median, P99: p99}, Latencies: []time.Duration{median},
			Density: &Density{Containers: count, PSS: pss}}
		if failures > 0 {
			r.Errors = []StartError{{ID: "x", Err: errors.New("boom")}}
		}
		return r
	}
	runs := []*Result{
		run(100, 30*time.Millisecond, 90*time.Millisecond, 3, 60*time.Millisecond, 3000, 0),
		run(80, 50*time.Millisecond, 70*time.Millisecond, 2, 60*time.Millisecond, 9000, 1),
		run(120, 40*time.Millisecond, 80*time.Millisecond, 3, 30*time.Millisecond, 6000, 0),
	}
	m := MedianOf(runs)
	tests := []struct {
		what      string
		got, want any
	}{
		{"containers/s", m.PerSecond, 100.0},
		{"median", m.Summary.Median, 40 * time.Millisecond},
		{"99%", m.Summary.P99, 80 * time.Millisecond},
		{"count", m.Summary.Count, 3},
		{"cpu/start", m.CPUPerStart(), 20 * time.Millisecond}, // 20, 30, 10 ms per start
		{"attempted", m.Attempted, 9},
		{"failures", m.Failures, 1},
		{"errors", len(m.Errors), 1},
		{"latencies", len(m.Latencies), 3},
		{"runs", len(m.Runs), 3},
		{"density of the median run", m.Density.PSS, uint64(6000)},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if one := MedianOf(runs[:1]); one != runs[0] {
		t.Error("the median of one run is not that run")
	}
}
