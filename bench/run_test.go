package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTarget is an in-memory Target: starts take a while and fail on
// command, and it records what the run did to it.
type fakeTarget struct {
	// delay is how long the start of id takes.
	delay func(id string) time.Duration
	// fail says whether the start of id fails.
	fail func(id string) error
	// hold, when set, is called inside each Start before it returns.
	hold     func()
	setupErr error
	pids     []int

	setupBundle string
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	mu          sync.Mutex
	started     []string
	torn        bool
}

func (f *fakeTarget) Name() string { return "fake" }

func (f *fakeTarget) Setup(_ context.Context, bundle string) error {
	f.setupBundle = bundle
	return f.setupErr
}

func (f *fakeTarget) Start(ctx context.Context, id string) error {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.started = append(f.started, id)
	f.mu.Unlock()
	if f.hold != nil {
		f.hold()
	}
	if f.delay != nil {
		select {
		case <-time.After(f.delay(id)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail != nil {
		return f.fail(id)
	}
	return nil
}

func (f *fakeTarget) OverheadPids(context.Context) ([]int, error) { return f.pids, nil }

func (f *fakeTarget) Teardown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.torn = true
	return nil
}

func constant(d time.Duration) func(string) time.Duration {
	return func(string) time.Duration { return d }
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunConcurrencyBound(t *testing.T) {
	tests := []struct {
		name           string
		n, concurrency int
		wantC          int
	}{
		{"one at a time", 12, 1, 1},
		{"four at a time", 40, 4, 4},
		{"all at once by default", 25, 0, 25},
		{"more than N is all at once", 10, 50, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTarget{delay: constant(5 * time.Millisecond)}
			res, err := Run(testContext(t), f, Options{N: tc.n, Concurrency: tc.concurrency, Bundle: "/b"})
			if err != nil {
				t.Fatal(err)
			}
			if got := int(f.maxInFlight.Load()); got != tc.wantC {
				t.Errorf("max starts in flight = %d, want %d", got, tc.wantC)
			}
			if res.Concurrency != tc.wantC {
				t.Errorf("Result.Concurrency = %d, want %d", res.Concurrency, tc.wantC)
			}
			if res.N != tc.n || res.Attempted != tc.n || res.Summary.Count != tc.n || res.Failures != 0 {
				t.Errorf("N %d attempted %d count %d failures %d, want %d, %d, %d, 0", res.N, res.Attempted, res.Summary.Count, res.Failures, tc.n, tc.n, tc.n)
			}
			if f.setupBundle != "/b" || !f.torn {
				t.Errorf("setup with %q, torn down %v", f.setupBundle, f.torn)
			}
			want := make([]string, tc.n)
			for i := range want {
				want[i] = ContainerID(DefaultIDPrefix, i, tc.n)
			}
			slices.Sort(f.started)
			if !slices.Equal(f.started, want) {
				t.Errorf("started %v, want %v", f.started, want)
			}
			if res.Summary.Min < 5*time.Millisecond {
				t.Errorf("min latency %v is below the start's own 5ms", res.Summary.Min)
			}
		})
	}
}

// TestRunBarrier: with all at once, every start must be in flight before
// any finishes. Each Start waits until all N have entered; a run that
// trickled them out one by one (or bounded them) would never get there.
func TestRunBarrier(t *testing.T) {
	const n = 200
	var entered sync.WaitGroup
	entered.Add(n)
	allIn := make(chan struct{})
	go func() { entered.Wait(); close(allIn) }()
	f := &fakeTarget{hold: func() {
		entered.Done()
		select {
		case <-allIn:
		case <-time.After(10 * time.Second):
		}
	}}
	res, err := Run(testContext(t), f, Options{N: n})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-allIn:
	default:
		t.Fatalf("only %d starts were ever in flight together, want %d", f.maxInFlight.Load(), n)
	}
	if res.Summary.Count != n || res.Summary.Max >= 10*time.Second {
		t.Errorf("count %d, max %v: starts waited for the timeout", res.Summary.Count, res.Summary.Max)
	}
}

func TestRunFailures(t *testing.T) {
	const n = 50
	boom := errors.New("boom")
	f := &fakeTarget{fail: func(id string) error {
		var i int
		fmt.Sscanf(strings.TrimPrefix(id, "x-"), "%d", &i)
		if i%7 == 0 {
			return fmt.Errorf("start %d: %w", i, boom)
		}
		return nil
	}}
	// One at a time, so that "the first errors" has one answer.
	res, err := Run(testContext(t), f, Options{N: n, Concurrency: 1, IDPrefix: "x-"})
	if err != nil {
		t.Fatal(err)
	}
	wantFail := 8 // 0, 7, ..., 49
	if res.Failures != wantFail || res.Summary.Count != n-wantFail || len(res.Latencies) != n-wantFail {
		t.Fatalf("failures %d, count %d, latencies %d; want %d, %d", res.Failures, res.Summary.Count, len(res.Latencies), wantFail, n-wantFail)
	}
	var ids []string
	for _, e := range res.Errors {
		if !errors.Is(e.Err, boom) {
			t.Errorf("error %v does not wrap the target's", e)
		}
		ids = append(ids, e.ID)
	}
	if want := []string{"x-00", "x-07", "x-14", "x-21", "x-28"}; !slices.Equal(ids, want) {
		t.Errorf("first errors for %v, want %v", ids, want)
	}
	if got := res.Errors[1].Error(); got != "x-07: start 7: boom" {
		t.Errorf("StartError.Error() = %q", got)
	}
}

func TestRunRate(t *testing.T) {
	const n, d = 20, 10 * time.Millisecond
	f := &fakeTarget{delay: constant(d)}
	res, err := Run(testContext(t), f, Options{N: n, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Two lanes of ten 10ms starts: at least 100ms, so at most 200/s.
	if res.Wall < n/2*d {
		t.Errorf("wall %v, want at least %v", res.Wall, n/2*d)
	}
	if want := float64(n) / res.Wall.Seconds(); res.PerSecond != want {
		t.Errorf("containers/s = %v, want successes/wall = %v", res.PerSecond, want)
	}
	if res.PerSecond > 200 || res.PerSecond < 20 {
		t.Errorf("containers/s = %.1f, want about 200 (at most 200)", res.PerSecond)
	}
	if res.Summary.Max > res.Wall {
		t.Errorf("a start (%v) took longer than the run (%v)", res.Summary.Max, res.Wall)
	}
}

func TestRunDensity(t *testing.T) {
	f := &fakeTarget{pids: []int{os.Getpid()}}
	res, err := Run(testContext(t), f, Options{N: 10, Density: true, Settle: -1})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Density
	if !d.Measured() || d.Containers != 10 || d.RSS == 0 || d.PSS == 0 || d.PSS > d.RSS {
		t.Fatalf("density %+v", d)
	}
	if got, want := d.PSSPerContainer(), float64(d.PSS)/10; got != want {
		t.Errorf("PSS per container %v, want %v", got, want)
	}
	if !d.IdleKnown || d.IdlePSS == 0 {
		t.Errorf("no idle figure: %+v", d)
	}
	if got, want := d.PSSGrowthPerContainer(), (float64(d.PSS)-float64(d.IdlePSS))/10; got != want {
		t.Errorf("PSS growth per container %v, want %v", got, want)
	}

	f = &fakeTarget{}
	res, err = Run(testContext(t), f, Options{N: 3, Density: true, Settle: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Density.Measured() || res.Density.Note == "" {
		t.Errorf("density of a target without overhead processes: %+v", res.Density)
	}
	if res, _ := Run(testContext(t), &fakeTarget{}, Options{N: 3}); res.Density != nil {
		t.Errorf("density measured without being asked")
	}
}

func TestRunSetupError(t *testing.T) {
	f := &fakeTarget{setupErr: errors.New("crun is not installed")}
	res, err := Run(testContext(t), f, Options{N: 3})
	if err == nil || !strings.Contains(err.Error(), "crun is not installed") || res != nil {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if len(f.started) != 0 || !f.torn {
		t.Errorf("after a failed setup: %d starts, torn down %v", len(f.started), f.torn)
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	var calls atomic.Int64
	f := &fakeTarget{hold: func() {
		if calls.Add(1) == 5 {
			cancel()
		}
	}}
	res, err := Run(ctx, f, Options{N: 100, Concurrency: 1})
	if !errors.Is(err, context.Canceled) || res == nil {
		t.Fatalf("Run = %v, %v; want a result and context.Canceled", res, err)
	}
	if res.Attempted != 5 || !f.torn {
		t.Errorf("attempted %d, torn down %v; want 5, true", res.Attempted, f.torn)
	}
}

func TestContainerID(t *testing.T) {
	tests := []struct {
		i, n int
		want string
	}{
		{0, 1, "b-0"},
		{9, 10, "b-9"},
		{7, 11, "b-07"},
		{7, 1000, "b-007"},
		{999, 1000, "b-999"},
		{42, 1001, "b-0042"},
	}
	for _, tc := range tests {
		if got := ContainerID("b-", tc.i, tc.n); got != tc.want {
			t.Errorf("ContainerID(%d, %d) = %q, want %q", tc.i, tc.n, got, tc.want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{N: DefaultN, Concurrency: DefaultN, IDPrefix: DefaultIDPrefix, Settle: DefaultSettle}},
		{"concurrency above n", Options{N: 5, Concurrency: 9}, Options{N: 5, Concurrency: 5, IDPrefix: DefaultIDPrefix, Settle: DefaultSettle}},
		{"measure at once", Options{N: 5, Concurrency: 2, Settle: -1, IDPrefix: "x-"}, Options{N: 5, Concurrency: 2, Settle: -1, IDPrefix: "x-"}},
	}
	for _, tc := range tests {
		if got := tc.in.withDefaults(); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
