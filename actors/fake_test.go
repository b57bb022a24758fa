package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors/events"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/fake"
)

// fakeEnv is a supervisor on the in-memory runtime: fast protocol tests.
type fakeEnv struct {
	rt     *fake.Runtime
	system *actor.ActorSystem
	sup    *Supervisor
}

func newFakeEnv(t *testing.T, o fake.Options, cfg Config) *fakeEnv {
	t.Helper()
	return newFakeEnvOn(t, o, cfg, func(rt *fake.Runtime) runtime.Runtime { return rt })
}

// newFakeEnvOn is newFakeEnv with the supervisor on wrap(the runtime), such
// as a crashingRuntime.
func newFakeEnvOn(t *testing.T, o fake.Options, cfg Config, wrap func(*fake.Runtime) runtime.Runtime) *fakeEnv {
	t.Helper()
	e := &fakeEnv{rt: fake.New(o), system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger() }))}
	cfg.Runtime = wrap(e.rt)
	cfg.Logger = quietLogger()
	var err error
	if e.sup, err = Spawn(e.system.Root, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.sup.Stop()
		e.system.Shutdown()
	})
	return e
}

func TestStartErrors(t *testing.T) {
	boom := errors.New("boom")
	e := newFakeEnv(t, fake.Options{
		BadBundles: []string{"/bad"},
		StartErr: func(_ context.Context, id string, _ runtime.StartOptions) error {
			if id == "fails" {
				return boom
			}
			return nil
		},
	}, Config{})
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "taken", "/b"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, bundle string
		want             error
	}{
		{"bad id", "../x", "/b", errclass.InvalidArgument},
		{"slash in id", "a/b", "/b", errclass.InvalidArgument},
		{"taken id", "taken", "/b", errclass.AlreadyExists},
		{"relative bundle", "rel", "b", errclass.InvalidArgument},
		{"bad bundle", "badb", "/bad", errclass.InvalidArgument},
		{"runtime failure", "fails", "/b", boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sup.Start(ctx, tc.id, tc.bundle)
			if !errors.Is(err, tc.want) {
				t.Fatalf("start: %v, want %v", err, tc.want)
			}
			if tc.id != "taken" {
				if _, ok := e.sup.State().Get(tc.id); ok {
					t.Errorf("a failed start is listed")
				}
			}
		})
	}
	// A failed start frees its id at once.
	if _, err := e.sup.Start(ctx, "badb", "/b"); err != nil {
		t.Errorf("start after a failed start with the same id: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	e := newFakeEnv(t, fake.Options{}, Config{})
	ctx := testContext(t)
	r, err := e.sup.Start(ctx, "web", "/b")
	if err != nil {
		t.Fatal(err)
	}
	initPid := r.Container.Processes[0].Pid
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown container", func() error { _, err := e.sup.Get(ctx, "nope"); return err }, errclass.NotFound},
		{"bad id", func() error { _, err := e.sup.Get(ctx, "a/b"); return err }, errclass.InvalidArgument},
		{"exec without args", func() error { _, err := e.sup.Exec(ctx, "web", runtime.ProcessSpec{}); return err }, errclass.InvalidArgument},
		{"unknown pid", func() error { return e.sup.Signal(ctx, "web", 1, syscall.SIGTERM) }, errclass.NotFound},
		{"bad signal", func() error { return e.sup.Signal(ctx, "web", initPid, 99) }, errclass.InvalidArgument},
		{"delete running", func() error { return e.sup.Delete(ctx, "web", false) }, errclass.FailedPrecondition},
		{"resume running is a no-op", func() error { _, err := e.sup.Resume(ctx, "web"); return err }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMessagesThroughSupervisor drives a container only by messages sent to
// the supervisor, as an embedding program may.
func TestMessagesThroughSupervisor(t *testing.T) {
	e := newFakeEnv(t, fake.Options{}, Config{})
	root := e.system.Root
	request := func(msg any) any {
		t.Helper()
		res, err := root.RequestFuture(e.sup.PID(), msg, 10*time.Second).Result()
		if err != nil {
			t.Fatalf("%T: %v", msg, err)
		}
		return res
	}
	start := request(&StartContainer{ID: "m", BundlePath: "/b"}).(*StartContainerResult)
	if start.Err != nil || start.Container.State.Status != api.Running {
		t.Fatalf("start: %+v", start)
	}
	exec := request(&ExecProcess{ID: "m", Process: runtime.ProcessSpec{Args: []string{"sleep", "1"}}}).(*ExecProcessResult)
	if exec.Err != nil {
		t.Fatal(exec.Err)
	}
	got := request(&GetContainer{ID: "m"}).(*GetContainerResult)
	if len(got.Container.Processes) != 2 || got.Container.Processes[1].Pid != exec.Process.Pid {
		t.Fatalf("processes = %+v", got.Container.Processes)
	}
	if r := request(&SignalProcess{ID: "m", Pid: exec.Process.Pid, Signal: syscall.SIGKILL}).(*SignalProcessResult); r.Err != nil {
		t.Fatal(r.Err)
	}
	state := request(&GetState{}).(*GetStateResult).State
	if _, ok := state.Get("m"); !ok {
		t.Fatal("GetState does not list the container")
	}
	if r := request(&GetContainer{ID: "none"}).(*GetContainerResult); !errors.Is(r.Err, errclass.NotFound) {
		t.Fatalf("unknown container through the supervisor: %v", r.Err)
	}
	if r := request(&DeleteContainer{ID: "m", Force: true}).(*DeleteContainerResult); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func TestAdmissionBoundsStartsInFlight(t *testing.T) {
	gate := make(chan struct{})
	e := newFakeEnv(t, fake.Options{Gate: gate}, Config{MaxStarts: 3})
	ctx := testContext(t)
	const n = 30
	var wg sync.WaitGroup
	results := make([]*StartContainerResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.sup.Start(ctx, fmt.Sprintf("a%02d", i), "/b")
			if err != nil {
				t.Errorf("start: %v", err)
			}
			results[i] = r
		}()
	}
	testutil.Eventually(t, "three starts in the runtime and the others waiting for admission", func() bool {
		return e.rt.InFlight() == 3 && e.sup.deps.admission.waiting() == n-3
	})
	heldFrom := time.Now()
	// Every start has reached admission: none beyond the three got in.
	if got := e.rt.InFlight(); got != 3 {
		t.Fatalf("%d starts in the runtime at once, want 3", got)
	}
	// The snapshot answers while every start is blocked.
	if got := len(e.sup.State().Containers); got != 0 {
		t.Errorf("%d containers listed before any start finished", got)
	}
	held := time.Since(heldFrom)
	close(gate)
	wg.Wait()
	if got := e.rt.MaxInFlight(); got != 3 {
		t.Errorf("max starts in flight = %d, want 3", got)
	}
	queued := 0
	for _, r := range results {
		// A start that waited, waited at least while the gate was held.
		if r != nil && r.Queued >= held {
			queued++
		}
	}
	if queued < n-3 {
		t.Errorf("%d starts report a wait for admission, want at least %d", queued, n-3)
	}
}

func TestAdmissionIsFirstInFirstOut(t *testing.T) {
	a := newAdmission(1)
	ctx := context.Background()
	if _, err := a.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 5
	order := make(chan int, n)
	for i := range n {
		go func() {
			if _, err := a.acquire(ctx); err == nil {
				order <- i
			}
		}()
		// Waiter i blocks before the next arrives.
		testutil.Eventually(t, fmt.Sprintf("waiter %d to queue", i), func() bool { return a.waiting() == i+1 })
	}
	for want := range n {
		a.release()
		if got := <-order; got != want {
			t.Fatalf("waiter %d admitted in place of %d", got, want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.acquire(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a cancelled context: %v", err)
	}
}

func TestSlowSubscriberGetsGap(t *testing.T) {
	log := events.New(events.Options{SubscriberQueue: 4})
	e := newFakeEnv(t, fake.Options{}, Config{Events: log})
	ctx := testContext(t)
	slow := log.Subscribe(events.Filter{})
	defer slow.Close()
	fast := log.Subscribe(events.Filter{})
	defer fast.Close()
	const n = 12
	// The reading subscriber accounts for every event, received or (if the
	// race detector slows it past its small queue) reported in a gap.
	done := make(chan uint64, 1)
	go func() {
		var count uint64
		for e := range fast.C() {
			if e.Type == api.EventGap {
				count += e.Missed
			} else {
				count++
			}
			if count >= n {
				break
			}
		}
		done <- count
	}()
	for i := range n {
		if _, err := e.sup.Start(ctx, fmt.Sprintf("g%02d", i), "/b"); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.Receive(t, "the reading subscriber to account for every event", done); got != n {
		t.Fatalf("the reading subscriber accounted for %d events, want %d", got, n)
	}
	var gap api.Event
	var seen uint64
	for gap.Type != api.EventGap {
		gap = testutil.Receive(t, "an event", slow.C())
		if gap.Type != api.EventGap {
			seen++
		}
	}
	if seen+gap.Missed > n || gap.Missed == 0 {
		t.Errorf("slow subscriber: %d events then a gap of %d; want them to add up to at most %d", seen, gap.Missed, n)
	}
}

func TestAdoptsExistingContainers(t *testing.T) {
	rt := fake.New(fake.Options{})
	ctx := testContext(t)
	for _, id := range []string{"old1", "old2"} {
		if _, err := rt.Start(ctx, id, runtime.StartOptions{BundlePath: "/b"}); err != nil {
			t.Fatal(err)
		}
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger() }))
	defer system.Shutdown()
	sup, err := Spawn(system.Root, Config{Runtime: rt, Adopt: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// Spawn returns once the books list what it adopted.
	if got := len(sup.State().Containers); got != 2 {
		t.Fatalf("%d containers listed after adoption, want 2", got)
	}
	if err := sup.Kill(ctx, "old1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "an adopted container's exit", func() bool { return status(sup.State(), "old1") == api.Stopped })
}

func TestRepeatedPanicsMarkContainer(t *testing.T) {
	e := newFakeEnvOn(t, fake.Options{}, Config{}, func(rt *fake.Runtime) runtime.Runtime { return crashingRuntime{rt} })
	ctx := testContext(t)
	if _, err := e.sup.Start(ctx, "flaky", "/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sup.Start(ctx, "steady", "/b"); err != nil {
		t.Fatal(err)
	}
	for range maxRestarts + 1 {
		crash(e.system.Root, e.sup, "flaky")
	}
	testutil.Eventually(t, "the flaky container to be marked", func() bool {
		c, ok := e.sup.State().Get("flaky")
		return ok && c.State.Error != ""
	})
	if _, err := e.sup.Get(ctx, "flaky"); !errors.Is(err, errclass.Unavailable) {
		t.Errorf("get of an unmanaged container: %v, want unavailable", err)
	}
	// Its processes were left alone, not killed.
	if c := e.rt.Lookup("flaky"); c == nil {
		t.Error("the runtime lost the container")
	} else if s, _ := c.Status(); s != runtime.Running {
		t.Errorf("the unmanaged container is %s", s)
	}
	if _, err := e.sup.Start(ctx, "flaky", "/b"); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("start over an unmanaged container: %v, want already exists", err)
	}
	if _, err := e.sup.Get(ctx, "steady"); err != nil {
		t.Errorf("the other container: %v", err)
	}
}

// TestJoinStartingContainer: a container that is still starting has no
// namespaces to join yet; a start that joins it is refused at once rather
// than waiting for it, and one that joins it once it runs gets its init.
func TestJoinStartingContainer(t *testing.T) {
	gate := make(chan struct{}, 1)
	e := newFakeEnv(t, fake.Options{Gate: gate}, Config{})
	ctx := testContext(t)
	held := make(chan error, 1)
	go func() {
		_, err := e.sup.Start(ctx, "sandbox", "/b")
		held <- err
	}()
	testutil.Eventually(t, "the sandbox's start to be in the runtime", func() bool { return e.rt.InFlight() == 1 })
	join := map[runtime.Namespace]string{runtime.NetworkNamespace: "sandbox"}
	for _, tc := range []struct {
		name string
		join map[runtime.Namespace]string
		want error
	}{
		{"starting", join, errclass.FailedPrecondition},
		{"unknown", map[runtime.Namespace]string{runtime.IPCNamespace: "nosuch"}, errclass.NotFound},
		{"itself", map[runtime.Namespace]string{runtime.UTSNamespace: "app"}, errclass.InvalidArgument},
		{"pid", map[runtime.Namespace]string{"pid": "sandbox"}, errclass.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.sup.StartContainer(ctx, StartContainer{ID: "app", BundlePath: "/b", Join: tc.join}); !errors.Is(err, tc.want) {
				t.Errorf("start: %v, want %v", err, tc.want)
			}
		})
	}
	gate <- struct{}{}
	if err := testutil.Receive(t, "the sandbox's start", held); err != nil {
		t.Fatal(err)
	}
	gate <- struct{}{}
	res, err := e.sup.StartContainer(ctx, StartContainer{ID: "app", BundlePath: "/b", Join: join})
	if err != nil {
		t.Fatalf("start after the sandbox runs: %v", err)
	}
	if res.Container.State.Status != api.Running {
		t.Errorf("joiner %+v", res.Container.State)
	}
}
