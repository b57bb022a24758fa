package bench

import (
	"testing"
	"time"
)

func millisDur(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func msList(vs ...float64) []time.Duration {
	ds := make([]time.Duration, len(vs))
	for i, v := range vs {
		ds[i] = millisDur(v)
	}
	return ds
}

func oneToN(n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		// Reversed, so that Summarize has to sort.
		ds[i] = time.Duration(n-i) * time.Millisecond
	}
	return ds
}

// The expected values are worked out by hand with go-metrics' rules:
// variance divided by n, percentile at position p·(n+1) interpolated
// between the neighbours, clamped to min and max.
func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{
			// pos = p·2 >= 1 = n for every row: all the maximum.
			"one", msList(5),
			Summary{Count: 1, Min: millisDur(5), Max: millisDur(5), Mean: millisDur(5), Stddev: 0,
				Median: millisDur(5), P75: millisDur(5), P95: millisDur(5), P99: millisDur(5), P999: millisDur(5)},
		},
		{
			// mean 2.5; variance (2.25+0.25+0.25+2.25)/4 = 1.25, stddev
			// 1.118034ms; median pos 2.5 → 2+0.5·(3-2); 75% pos 3.75 →
			// 3+0.75·(4-3); 95% pos 4.75 >= 4 → max.
			"four unsorted", msList(4, 1, 3, 2),
			Summary{Count: 4, Min: millisDur(1), Max: millisDur(4), Mean: millisDur(2.5), Stddev: 1118034,
				Median: millisDur(2.5), P75: millisDur(3.75), P95: millisDur(4), P99: millisDur(4), P999: millisDur(4)},
		},
		{
			// mean 5.5; variance 82.5/10 = 8.25, stddev 2.8722813ms;
			// median pos 5.5; 75% pos 8.25 → 8+0.25; 95% pos 10.45 → max.
			"one to ten", oneToN(10),
			Summary{Count: 10, Min: millisDur(1), Max: millisDur(10), Mean: millisDur(5.5), Stddev: 2872281,
				Median: millisDur(5.5), P75: millisDur(8.25), P95: millisDur(10), P99: millisDur(10), P999: millisDur(10)},
		},
		{
			// The reference's size. mean 500.5; variance (n²-1)/12 =
			// 83333.25, stddev 288.67499026ms; pos p·1001: 500.5, 750.75,
			// 950.95, 990.99, 999.999 → the value at the pos itself.
			"one to a thousand", oneToN(1000),
			Summary{Count: 1000, Min: millisDur(1), Max: millisDur(1000), Mean: millisDur(500.5), Stddev: 288674990,
				Median: millisDur(500.5), P75: millisDur(750.75), P95: millisDur(950.95), P99: millisDur(990.99), P999: millisDur(999.999)},
		},
		{
			// Skewed, like a burst: the 99.9% of 5 values is the max, the
			// mean is pulled up, stddev = sqrt(((-20)²·4+80²)/5) = 40.
			"outlier", msList(10, 10, 10, 10, 110),
			Summary{Count: 5, Min: millisDur(10), Max: millisDur(110), Mean: millisDur(30), Stddev: millisDur(40),
				Median: millisDur(10), P75: millisDur(60), P95: millisDur(110), P99: millisDur(110), P999: millisDur(110)},
		},
		{
			// Sub-nanosecond results round half away from zero, as a
			// float64 → Duration conversion of go-metrics' mean would
			// truncate: 1.5ns → 2ns.
			"nanoseconds", []time.Duration{1, 2},
			Summary{Count: 2, Min: 1, Max: 2, Mean: 2, Stddev: 1,
				Median: 2, P75: 2, P95: 2, P99: 2, P999: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.in...)
			got := Summarize(tc.in)
			if got != tc.want {
				t.Errorf("Summarize:\n got %+v\nwant %+v", got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("Summarize changed its input")
				}
			}
		})
	}
}

func TestPercentileClamps(t *testing.T) {
	sorted := msList(10, 20, 30)
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{0, millisDur(10)},     // pos 0 < 1: min
		{0.2, millisDur(10)},   // pos 0.8 < 1: min
		{0.25, millisDur(10)},  // pos 1: exactly the first
		{0.3, millisDur(12)},   // pos 1.2: 10 + 0.2·10
		{0.5, millisDur(20)},   // pos 2
		{0.7, millisDur(28)},   // pos 2.8: 20 + 0.8·10
		{0.75, millisDur(30)},  // pos 3 >= n: max
		{0.999, millisDur(30)}, // max
	}
	for _, tc := range tests {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}
