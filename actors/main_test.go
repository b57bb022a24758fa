package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// testRootfs is a busybox rootfs shared read-only by the tests' bundles.
var testRootfs string

func TestMain(m *testing.M) {
	// This test binary is also the init of the real containers.
	linux.Init()
	os.Exit(linuxtest.Guarded(func() int { return run(m) }))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		// The fake-runtime and unit tests run; those on real containers
		// skip themselves (requireRoot).
		return m.Run()
	}
	dir, rootfs, err := linuxtest.SharedRootfs("troupe-actors-test-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer linuxtest.RemoveAll(dir)
	testRootfs = rootfs
	linuxtest.UseCriu()
	// The Example's containers live under a cgroup parent of their own;
	// its (empty) directories go with the test binary.
	example := fmt.Sprintf("/troupe-example-%d", os.Getpid())
	linuxtest.TrackCgroup(example)
	code := m.Run()
	linuxtest.RemoveCgroup(example)
	return code
}

// requireRoot skips a test that starts real containers when it cannot:
// they need root (namespaces, cgroups, mounts).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starts real containers: needs root")
	}
}

// quietLogger drops the actors' logs: tests look at behaviour.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// realEnv is a supervisor on the Linux runtime, in its own actor system,
// state dir and cgroup parent.
type realEnv struct {
	t      testing.TB
	dir    string
	rt     *linux.Runtime
	system *actor.ActorSystem
	sup    *Supervisor
}

func newRealEnv(t testing.TB, cfg Config) *realEnv {
	t.Helper()
	return newRealEnvOn(t, cfg, func(rt *linux.Runtime) runtime.Runtime { return rt })
}

// newRealEnvOn is newRealEnv with the supervisor on wrap(the runtime), such
// as a crashingRuntime.
func newRealEnvOn(t testing.TB, cfg Config, wrap func(*linux.Runtime) runtime.Runtime) *realEnv {
	t.Helper()
	requireRoot(t)
	dir, err := os.MkdirTemp(filepath.Dir(testRootfs), "case-")
	if err != nil {
		t.Fatal(err)
	}
	parent := "/troupe-test-" + filepath.Base(dir)
	linuxtest.TrackCgroup(parent)
	rt, err := linux.New(linux.Options{StateDir: filepath.Join(dir, "state"), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	e := &realEnv{t: t, dir: dir, rt: rt, system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger() }))}
	cfg.Runtime = wrap(rt)
	if cfg.Checkpoints, err = checkpoint.New(filepath.Join(dir, "checkpoints")); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if e.sup, err = Spawn(e.system.Root, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		linuxtest.DeleteAll(t, rt)
		_ = e.sup.Stop()
		e.system.Shutdown()
		rt.Close()
		linuxtest.RemoveCgroup(parent)
		if err := linuxtest.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return e
}

// bundle writes a busybox bundle on the shared rootfs.
func (e *realEnv) bundle(name string, args ...string) string {
	e.t.Helper()
	p, err := busybox.Bundle(filepath.Join(e.dir, "bundles", name), busybox.Options{Rootfs: testRootfs, Args: args})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// status returns the snapshot's status of id, or "" if it is not listed.
func status(s *State, id string) api.Status {
	if c, ok := s.Get(id); ok {
		return c.State.Status
	}
	return ""
}
