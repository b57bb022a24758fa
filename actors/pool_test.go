package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

func TestRealWarmPool(t *testing.T) {
	e := newRealEnv(t, Config{MaxStarts: 2})
	ctx := testContext(t)
	b := e.bundle("warm", "sh", "-c", "echo warmed; exec sleep 3600")
	p, created, err := e.sup.SetPool(ctx, "web", b, 3)
	if err != nil || !created || p.Size != 3 || p.BundlePath != b {
		t.Fatalf("set pool = %+v, %v, %v", p, created, err)
	}
	ready := func(n int) func() bool {
		return func() bool { p, err := e.sup.Pool(ctx, "web"); return err == nil && p.Ready == n && p.Filling == 0 }
	}
	testutil.Eventually(t, "a full pool", ready(3))
	prepared := func() []string {
		m, _ := filepath.Glob(filepath.Join(e.dir, "state", "containers", "+warm-*"))
		return m
	}
	if n := len(prepared()); n != 3 {
		t.Fatalf("%d prepared containers on disk, want 3", n)
	}

	// Three starts of the bundle claim the three prepared containers.
	for i := range 3 {
		id := fmt.Sprintf("w%d", i)
		r, err := e.sup.Start(ctx, id, b)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Container.Warm || r.Container.State.Status != api.Running || len(r.Container.Processes) != 1 {
			t.Fatalf("start %s = %+v, want a warm running container", id, r.Container)
		}
		if c, ok := e.sup.State().Get(id); !ok || !c.Warm {
			t.Errorf("%s not warm in the books: %+v", id, c)
		}
	}
	// Claimed, each ran the bundle's process; they behave like any other.
	testutil.Eventually(t, "the init's output", func() bool {
		logPath, _ := e.sup.LogPath(ctx, "w0")
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "warmed")
	})
	if _, err := e.sup.Exec(ctx, "w1", runtime.ProcessSpec{Args: []string{"true"}}); err != nil {
		t.Errorf("exec into a warm container: %v", err)
	}
	testutil.Eventually(t, "the pool refilled", ready(3))

	// A changed bundle makes the pool stale: the start goes cold and the
	// pool is made again from the new config.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(b, "config.json"), later, later); err != nil {
		t.Fatal(err)
	}
	r, err := e.sup.Start(ctx, "cold", b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Container.Warm {
		t.Error("a start after the bundle changed was warm")
	}
	testutil.Eventually(t, "the pool refilled after the change", ready(3))
	if r, err := e.sup.Start(ctx, "w3", b); err != nil || !r.Container.Warm {
		t.Errorf("start after refill: warm=%v, %v", r.Container.Warm, err)
	}
	testutil.Eventually(t, "the pool refilled", ready(3))

	// Shrinking discards; deleting discards the rest and leaves claimed ones.
	if p, _, err := e.sup.SetPool(ctx, "web", "", 1); err != nil || p.Size != 1 {
		t.Fatalf("resize = %+v, %v", p, err)
	}
	testutil.Eventually(t, "the pool shrunk", func() bool { return len(prepared()) == 4+1 })
	if err := e.sup.DeletePool(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if n := len(prepared()); n != 4 {
		t.Errorf("%d prepared state dirs after delete, want the 4 claimed", n)
	}
	if _, err := e.sup.Pool(ctx, "web"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("deleted pool: %v", err)
	}
	if s := status(e.sup.State(), "w3"); s != api.Running {
		t.Errorf("claimed container after pool delete: %s", s)
	}
	if r, err := e.sup.Start(ctx, "after", b); err != nil || r.Container.Warm {
		t.Errorf("start without a pool: warm=%v, %v", r.Container.Warm, err)
	}
}

func TestRealWarmPoolErrors(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	b := e.bundle("b", "sleep", "3600")
	if _, _, err := e.sup.SetPool(ctx, "p", b, 1); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(e.dir, "nobundle")
	tests := []struct {
		name, pool, bundle string
		size               int
		want               error
	}{
		{"bad name", "a/b", b, 1, errclass.InvalidArgument},
		{"negative size", "q", b, -1, errclass.InvalidArgument},
		{"too big", "q", b, MaxPoolSize + 1, errclass.InvalidArgument},
		{"relative bundle", "q", "bundles/b", 1, errclass.InvalidArgument},
		{"no bundle", "q", bad, 1, errclass.InvalidArgument},
		{"bundle has a pool", "q", b, 1, errclass.AlreadyExists},
		{"pool has another bundle", "p", bad, 1, errclass.AlreadyExists},
	}
	for _, tc := range tests {
		if _, _, err := e.sup.SetPool(ctx, tc.pool, tc.bundle, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := e.sup.DeletePool(ctx, "nope"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("delete unknown pool: %v", err)
	}
	if pools, err := e.sup.Pools(ctx); err != nil || len(pools) != 1 || pools[0].Name != "p" {
		t.Errorf("pools = %+v, %v", pools, err)
	}
}

// A bundle that stops working after its pool was made is retried with a
// growing delay, not in a loop, and the pool says why it is empty.
func TestRealWarmPoolFailingBundle(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	b, err := busybox.Bundle(filepath.Join(e.dir, "bundles", "breaks"), busybox.Options{Args: []string{"sleep", "3600"}})
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(b, "rootfs")
	// The bundle is fine when the pool is asked for and breaks just after.
	if _, _, err := e.sup.SetPool(ctx, "breaks", b, 2); err != nil {
		t.Fatal(err)
	}
	// Moved away, not removed: a prepare under way may be making
	// directories in it, and a removal would race those.
	if err := os.Rename(rootfs, rootfs+".gone"); err != nil {
		t.Fatal(err)
	}
	// A prepare under way when it broke fails in libcontainer; the retries,
	// a second or more later, say what is wrong.
	var info api.Pool
	testutil.Eventually(t, "the pool to report its error", func() bool {
		info, err = e.sup.Pool(ctx, "breaks")
		return err == nil && strings.Contains(info.Error, "root.path") && info.Filling == 0
	})
	// Backing off: for a second the pool stays as it was (a new attempt
	// would fail with the same error).
	before := info.Error
	if testutil.Within(time.Second, func() bool {
		info, _ = e.sup.Pool(ctx, "breaks")
		return info.Ready != 0 || info.Error != before
	}) {
		t.Errorf("pool within a second of its error: %+v", info)
	}
	if dirs, _ := filepath.Glob(filepath.Join(e.dir, "state", "containers", "+warm-*")); len(dirs) != 0 {
		t.Errorf("failed prepares left state: %v", dirs)
	}
	// Fixed, it fills (the retry comes after the backoff).
	if _, err := busybox.Bundle(b, busybox.Options{Args: []string{"sleep", "3600"}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the pool to fill once the bundle works", func() bool {
		info, err = e.sup.Pool(ctx, "breaks")
		return err == nil && info.Ready == 2 && info.Error == ""
	})
}
