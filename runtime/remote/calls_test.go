package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/criu"
	"github.com/troupe-run/troupe/runtime/fake"
)

// TestConcurrentCalls runs many calls at once on one connection: each gets
// its own answer.
func TestConcurrentCalls(t *testing.T) {
	rt := fake.New(fake.Options{StartDelay: 5 * time.Millisecond})
	cl := serve(t, fakeEngine{Runtime: rt})
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			err := func() error {
				c, err := cl.Start(context.Background(), id, runtime.StartOptions{BundlePath: bundlePath})
				if err != nil {
					return err
				}
				if c.ID() != id {
					return fmt.Errorf("Start %s gave %s", id, c.ID())
				}
				p, err := c.Exec(context.Background(), runtime.ProcessSpec{Args: []string{"sleep", "1"}})
				if err != nil {
					return err
				}
				if err := c.Signal(p.Pid(), syscall.SIGKILL); err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if st, err := p.Wait(ctx); err != nil || st.Signal != syscall.SIGKILL {
					return fmt.Errorf("exec in %s: %+v, %v", id, st, err)
				}
				if l, err := cl.Load(context.Background(), id); err != nil || l.Init().Pid() != c.Init().Pid() {
					return fmt.Errorf("Load %s: %v", id, err)
				}
				return c.Delete(ctx, true)
			}()
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ids, err := cl.List(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("List = %v, %v; want none", ids, err)
	}
	if rt.MaxInFlight() < 2 {
		t.Errorf("at most %d starts in flight at once: the calls were serialised", rt.MaxInFlight())
	}
}

// TestContextReachesServer checks that a call's deadline and its
// cancellation end the runtime's call in the engine, which answers.
func TestContextReachesServer(t *testing.T) {
	tests := []struct {
		name string
		// ctx returns the call's context; cancel, if not nil, is called
		// once the start is held in the engine.
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			t.Cleanup(func() { close(gate) })
			rt := fake.New(fake.Options{Gate: gate})
			cl := serve(t, fakeEngine{Runtime: rt})
			ctx, cancel := tc.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := cl.Start(ctx, "held", runtime.StartOptions{BundlePath: bundlePath})
				errc <- err
			}()
			testutil.Eventually(t, "the start held in the engine", func() bool { return rt.InFlight() == 1 })
			if tc.want == context.Canceled {
				cancel()
			}
			err := testutil.Receive(t, "the start's end", errc)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start: %v, want %v", err, tc.want)
			}
			// The fake's own message: the engine's call ended.
			if want := `start container "held": ` + tc.want.Error(); err.Error() != want {
				t.Errorf("Start: %q, want the engine's %q", err, want)
			}
			if rt.InFlight() != 0 {
				t.Errorf("%d starts still in flight in the engine", rt.InFlight())
			}
		})
	}
	t.Run("deadline value", func(t *testing.T) {
		seen := make(chan time.Time, 1)
		rt := fake.New(fake.Options{StartErr: func(ctx context.Context, id string, _ runtime.StartOptions) error {
			dl, _ := ctx.Deadline()
			seen <- dl
			return nil
		}})
		cl := serve(t, fakeEngine{Runtime: rt})
		dl := time.Now().Add(time.Hour)
		ctx, cancel := context.WithDeadline(context.Background(), dl)
		defer cancel()
		startFake(t, withCtx(cl, ctx), "dl")
		if got := testutil.Receive(t, "the engine's deadline", seen); !got.Equal(dl) {
			t.Errorf("the engine's deadline is %v, the caller's %v", got, dl)
		}
	})
}

// withCtx makes Start use ctx.
type ctxRuntime struct {
	runtime.Runtime
	ctx context.Context
}

func withCtx(rt runtime.Runtime, ctx context.Context) runtime.Runtime { return ctxRuntime{rt, ctx} }

func (r ctxRuntime) Start(_ context.Context, id string, o runtime.StartOptions) (runtime.Container, error) {
	return r.Runtime.Start(r.ctx, id, o)
}

// TestErrorClasses checks that an error keeps its message and its class
// across the wire.
func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		class error
	}{
		{"not found", fmt.Errorf("container %q: %w", "x", errclass.NotFound), errclass.NotFound},
		{"already exists", fmt.Errorf("id taken: %w", errclass.AlreadyExists), errclass.AlreadyExists},
		{"invalid argument", errclass.With(errclass.InvalidArgument, errors.New("bad bundle")), errclass.InvalidArgument},
		{"failed precondition", fmt.Errorf("stopped: %w", errclass.FailedPrecondition), errclass.FailedPrecondition},
		{"unavailable", fmt.Errorf("no criu: %w", errclass.Unavailable), errclass.Unavailable},
		{"deadline", fmt.Errorf("checkpoint: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{"canceled", fmt.Errorf("start: %w", context.Canceled), context.Canceled},
		{"criu stuck", fmt.Errorf("checkpoint: %w: %w", errclass.Unavailable, criu.ErrStuck), criu.ErrStuck},
		{"no class", errors.New("plain"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := serve(t, fakeEngine{Runtime: fake.New(fake.Options{}), err: tc.err})
			err := cl.RemovePrepared(context.Background())
			if err == nil || err.Error() != tc.err.Error() {
				t.Fatalf("error %q, want %q", err, tc.err)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("error %q is not %v", err, tc.class)
			}
			for _, other := range []error{errclass.NotFound, errclass.AlreadyExists, errclass.InvalidArgument,
				errclass.FailedPrecondition, errclass.Unavailable, context.DeadlineExceeded, context.Canceled, criu.ErrStuck} {
				if errors.Is(err, other) != errors.Is(tc.err, other) {
					t.Errorf("errors.Is(%q, %v) = %v across the wire, %v in the engine", err, other, errors.Is(err, other), !errors.Is(err, other))
				}
			}
		})
	}
	t.Run("from the runtime", func(t *testing.T) {
		rt := fake.New(fake.Options{})
		cl := serve(t, fakeEngine{Runtime: rt})
		c := startFake(t, cl, "errs")
		direct := rt.Lookup("errs")
		_, rerr := cl.Load(context.Background(), "nosuch")
		_, derr := rt.Load(context.Background(), "nosuch")
		if !errors.Is(rerr, errclass.NotFound) || rerr.Error() != derr.Error() {
			t.Errorf("Load: %v over the wire, %v direct", rerr, derr)
		}
		if rerr, derr := c.Resume(), direct.Resume(); !errors.Is(rerr, errclass.FailedPrecondition) || rerr.Error() != derr.Error() {
			t.Errorf("Resume: %v over the wire, %v direct", rerr, derr)
		}
	})
	t.Run("reconcile reports what it did when it fails", func(t *testing.T) {
		cl := serve(t, fakeEngine{Runtime: fake.New(fake.Options{}), err: errors.New("cgroup busy")})
		rec, err := cl.Reconcile(context.Background())
		if err == nil || len(rec.Destroyed) != 1 || rec.Destroyed[0] != "half-made" {
			t.Errorf("Reconcile = %+v, %v; want the report and the error", rec, err)
		}
		if n := cl.LogDropped(); n != 42 {
			t.Errorf("LogDropped = %d, want 42", n)
		}
	})
}

// TestEngineGone checks what the daemon sees when the engine goes away: the
// call in flight and later ones fail with errclass.Unavailable naming the
// engine, Done is closed, and a Wait on a process returns.
func TestEngineGone(t *testing.T) {
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	rt := fake.New(fake.Options{Gate: gate})
	cl := serve(t, fakeEngine{Runtime: rt})
	go func() { gate <- struct{}{} }() // lets one start through
	c := startFake(t, cl, "before")
	errc := make(chan error, 1)
	go func() {
		_, err := cl.Start(context.Background(), "held", runtime.StartOptions{BundlePath: bundlePath})
		errc <- err
	}()
	testutil.Eventually(t, "the start held in the engine", func() bool { return rt.InFlight() == 1 })
	select {
	case <-cl.Done():
		t.Fatal("Done is closed while the engine serves")
	default:
	}
	waitc := make(chan error, 1)
	go func() {
		_, err := c.Init().Wait(context.Background())
		waitc <- err
	}()
	if err := cl.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve: %v, want its context's end", err)
	}
	for what, err := range map[string]error{
		"the start in flight": testutil.Receive(t, "the start in flight", errc),
		"a wait":              testutil.Receive(t, "a wait", waitc),
		"a later call":        c.Pause(),
	} {
		if !errors.Is(err, errclass.Unavailable) || !strings.Contains(err.Error(), "runtime engine") {
			t.Errorf("%s: %v, want unavailable naming the engine", what, err)
		}
	}
	testutil.Done(t, "the client's Done", cl.Done())
	if err := cl.Err(); !errors.Is(err, errclass.Unavailable) {
		t.Errorf("Err = %v, want unavailable", err)
	}
}

// BenchmarkCall is the cost of one round trip: a container's Status on the
// fake, directly and through a client and server over a socketpair.
func BenchmarkCall(b *testing.B) {
	for _, via := range []string{"direct", "remote"} {
		b.Run(via, func(b *testing.B) {
			f := fake.New(fake.Options{})
			var rt runtime.Runtime = f
			if via == "remote" {
				rt = serve(b, fakeEngine{Runtime: f})
			}
			c, err := rt.Start(context.Background(), "bench", runtime.StartOptions{BundlePath: bundlePath})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Delete(context.Background(), true) })
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Status(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
