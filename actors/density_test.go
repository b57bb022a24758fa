package actors

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
)

// TestRunningContainersHoldNoGoroutines checks that the actors watch their
// containers through the runtime's callbacks: running containers, each with
// an exec'd process, hold no goroutine of their own, where a goroutine
// waiting per container and per process would hold two each. Then every
// exit still reaches the books.
func TestRunningContainersHoldNoGoroutines(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	const n = 40
	b := e.bundle("sleep", "sleep", "300")
	// The first start makes what stays whatever the count (the reactor,
	// the actors' dispatchers).
	if _, err := e.sup.Start(ctx, "first", b); err != nil {
		t.Fatal(err)
	}
	before := goruntime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("d%02d", i)
			if _, err := e.sup.Start(ctx, id, b); err != nil {
				errs <- err
				return
			}
			if _, err := e.sup.Exec(ctx, id, runtime.ProcessSpec{Args: []string{"sleep", "300"}}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testutil.Eventually(t, fmt.Sprintf("at most %d more goroutines than before %d running containers with an exec each", n/4, n), func() bool {
		return goruntime.NumGoroutine()-before <= n/4
	})
	t.Logf("%d running containers, each with an exec'd process: goroutines %d -> %d", n, before, goruntime.NumGoroutine())
	for i := range n {
		if err := e.sup.Kill(ctx, fmt.Sprintf("d%02d", i), 9); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "every container stopped in the books", func() bool {
		for i := range n {
			if status(e.sup.State(), fmt.Sprintf("d%02d", i)) != api.Stopped {
				return false
			}
		}
		return true
	})
}
