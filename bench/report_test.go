package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// referenceSummary is the reference's table (the original containerd's,
// Dec 2015), with sub-millisecond parts that the report must round away.
var referenceSummary = Summary{
	Count: 1000, Min: millisDur(23.2), Max: millisDur(355), Mean: millisDur(77.5), Stddev: millisDur(34.4),
	Median: millisDur(72.6), P75: millisDur(91), P95: millisDur(123.4), P99: millisDur(287.49), P999: millisDur(355),
}

func referenceResult() *Result {
	return &Result{
		Target: "troupe", N: 1000, Concurrency: 1000, Attempted: 1000,
		Summary: referenceSummary, Wall: 7450 * time.Millisecond, PerSecond: 134.2282,
		CPU: 24300 * time.Millisecond, Teardown: 1234 * time.Millisecond,
	}
}

func TestWriteReport(t *testing.T) {
	tests := []struct {
		name string
		res  func() *Result
		want string
	}{
		{
			name: "the reference's rows",
			res:  referenceResult,
			want: `troupe: 1000 starts, all at once
count:        1000
min:          23ms
max:          355ms
mean:         78ms
stddev:       34ms
median:       73ms
75%:          91ms
95%:          123ms
99%:          287ms
99.9%:        355ms
containers/s: 134.2
wall:         7.45s
cpu/start:    24.3ms
failures:     0
teardown:     1.23s
`,
		},
		{
			name: "failures, density, teardown error, concurrency",
			res: func() *Result {
				r := referenceResult()
				r.Concurrency = 10
				r.Summary.Count = 993
				r.Failures = 7
				r.Errors = []StartError{
					{ID: "bench-017", Err: errors.New("start container \"bench-017\": no space left")},
					{ID: "bench-018", Err: errors.New("timeout")},
				}
				r.TeardownErr = errors.New("1 of 1000 deletes failed")
				r.ProcCPU = 993 * 19 * time.Millisecond
				r.Density = &Density{Containers: 993, Pids: []int{4242}, RSS: 993 << 20, PSS: 993 << 19, IdleKnown: true, IdlePSS: 993 << 18, Threads: 9, IdleThreads: 8}
				return r
			},
			want: `troupe: 1000 starts, 10 at a time
count:        993
min:          23ms
max:          355ms
mean:         78ms
stddev:       34ms
median:       73ms
75%:          91ms
95%:          123ms
99%:          287ms
99.9%:        355ms
containers/s: 134.2
wall:         7.45s
cpu/start:    24.5ms
proc cpu:     19.0ms
failures:     7 of 1000
  bench-017: start container "bench-017": no space left
  bench-018: timeout
  (and 5 more)
teardown:     1.23s (1 of 1000 deletes failed)
rss/running:  1.00 MiB (993 running; pids 4242)
pss/running:  512 KiB
pss growth:   256 KiB per running container over the idle 248.25 MiB
threads:      9 (idle: 8)
`,
		},
		{
			name: "nothing started, density not measured",
			res: func() *Result {
				return &Result{Target: "runc", N: 5, Concurrency: 5, Attempted: 2, Failures: 2,
					Errors:  []StartError{{ID: "b-0", Err: errors.New("runc: not found")}, {ID: "b-1", Err: errors.New("runc: not found")}},
					Density: &Density{Containers: 0, Note: "the target names no overhead processes"}}
			},
			want: `runc: 2 of 5 starts (interrupted), all at once
count:        0
min:          -
max:          -
mean:         -
stddev:       -
median:       -
75%:          -
95%:          -
99%:          -
99.9%:        -
containers/s: 0.0
wall:         0.00s
cpu/start:    -
failures:     2 of 2
  b-0: runc: not found
  b-1: runc: not found
teardown:     0.00s
density:      not measured: the target names no overhead processes
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteReport(&b, tc.res()); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestWriteComparison(t *testing.T) {
	troupe := referenceResult()
	troupe.Density = &Density{Containers: 1000, Pids: []int{1}, RSS: 100 << 20, PSS: 80 << 20, IdleKnown: true, IdleRSS: 40 << 20, IdlePSS: 30 << 20}
	crun := &Result{
		Target: "crun", N: 1000, Concurrency: 1000, Attempted: 1000, PerSecond: 151.0,
		Summary: Summary{Count: 1000, Min: millisDur(9), Max: millisDur(6600), Mean: millisDur(3300), Stddev: millisDur(1900),
			Median: millisDur(3300), P75: millisDur(5000), P95: millisDur(6300), P99: millisDur(6500), P999: millisDur(6600)},
		Wall: 6620 * time.Millisecond, CPU: 12 * time.Second, Teardown: 11 * time.Second,
		Density: &Density{Note: "crun has no daemon"},
	}
	containerd := &Result{
		Target: "containerd", N: 1000, Concurrency: 1000, Attempted: 1000, PerSecond: 23.04,
		Summary: Summary{Count: 998, Min: millisDur(60), Max: millisDur(43000), Mean: millisDur(21000), Stddev: millisDur(12000),
			Median: millisDur(21000), P75: millisDur(32000), P95: millisDur(41000), P99: millisDur(42700), P999: millisDur(43000)},
		Failures: 2, Errors: []StartError{{ID: "bench-5", Err: errors.New("timed out waiting for server handshake")}},
		Wall: 43300 * time.Millisecond, CPU: 80 * time.Second, Teardown: 20 * time.Second,
		Density: &Density{Containers: 998, Pids: []int{7, 8}, RSS: 2 * 998 << 20, PSS: 998 * 5 << 19},
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, []*Result{troupe, crun, containerd}); err != nil {
		t.Fatal(err)
	}
	want := `              troupe    crun     containerd
count:        1000      1000     998
min:          23ms      9.0ms    60ms
max:          355ms     6600ms   43000ms
mean:         78ms      3300ms   21000ms
stddev:       34ms      1900ms   12000ms
median:       73ms      3300ms   21000ms
75%:          91ms      5000ms   32000ms
95%:          123ms     6300ms   41000ms
99%:          287ms     6500ms   42700ms
99.9%:        355ms     6600ms   43000ms
containers/s: 134.2     151.0    23.0
wall:         7.45s     6.62s    43.30s
cpu/start:    24.3ms    12.0ms   80.2ms
failures:     0         0        2
teardown:     1.23s     11.00s   20.00s
rss/running:  102 KiB   -        2.00 MiB
pss/running:  82 KiB    -        2.50 MiB
pss growth:   51 KiB    -        -

vs troupe:
containers/s: 1.00x     1.12x    0.17x
median:       1.00x     45.45x   289.26x
99%:          1.00x     22.61x   148.53x
cpu/start:    1.00x     0.49x    3.30x
teardown:     1.00x     8.91x    16.21x
pss/running:  1.00x     -        31.25x

containerd: 2 of 1000 starts failed
  bench-5: timed out waiting for server handshake
  (and 1 more)

crun: density not measured: crun has no daemon
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	r := referenceResult()
	r.Failures = 1
	r.Errors = []StartError{{ID: "bench-1", Err: errors.New("boom")}}
	r.Density = &Density{Containers: 999, Pids: []int{42}, RSS: 999 << 20, PSS: 999 << 19, IdleKnown: true, IdleRSS: 999 << 19, IdlePSS: 999 << 18}
	var b bytes.Buffer
	if err := WriteJSON(&b, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	// The field names are an interface: decode into a plain map and look.
	var doc map[string][]map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := doc["results"][0]
	want := map[string]any{
		"target": "troupe", "n": 1000.0, "concurrency": 1000.0, "attempted": 1000.0, "count": 1000.0, "failures": 1.0,
		"minMs": 23.2, "maxMs": 355.0, "meanMs": 77.5, "stddevMs": 34.4, "medianMs": 72.6, "p75Ms": 91.0,
		"p95Ms": 123.4, "p99Ms": 287.49, "p999Ms": 355.0, "wallMs": 7450.0, "containersPerSecond": 134.2282,
		"cpuMs": 24300.0, "cpuPerStartMs": 24.3, "teardownMs": 1234.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if errs, _ := got["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["id"] != "bench-1" || errs[0].(map[string]any)["error"] != "boom" {
		t.Errorf("errors = %v", got["errors"])
	}
	d, _ := got["density"].(map[string]any)
	if d["containers"] != 999.0 || d["rssPerContainerBytes"] != float64(1<<20) || d["pssPerContainerBytes"] != float64(1<<19) || d["pssBytes"] != float64(999<<19) {
		t.Errorf("density = %v", d)
	}
	if d["idlePssBytes"] != float64(999<<18) || d["pssGrowthPerContainerBytes"] != float64(1<<18) || d["rssGrowthPerContainerBytes"] != float64(1<<19) {
		t.Errorf("idle density = %v", d)
	}
	if _, ok := got["teardownError"]; ok {
		t.Error("teardownError present without an error")
	}
	// No results is an empty list, not null.
	b.Reset()
	if err := WriteJSON(&b, nil); err != nil || !strings.Contains(b.String(), `"results": []`) {
		t.Errorf("empty document %q, %v", b.String(), err)
	}
}

// A comparison run without --density has no Density at all.
func TestWriteComparisonWithoutDensity(t *testing.T) {
	a, b := referenceResult(), referenceResult()
	b.Target = "troupe-warm"
	a.Density, b.Density = nil, nil
	var out bytes.Buffer
	if err := WriteComparison(&out, []*Result{a, b}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "troupe-warm") {
		t.Errorf("comparison lacks a column:\n%s", out.String())
	}
}
