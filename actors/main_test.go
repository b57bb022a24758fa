package actors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// shared is the busybox rootfs the real tests' bundles share read-only.
var shared = troupetest.NewShared("troupe-actors-test-")

func TestMain(m *testing.M) {
	// This test binary is also the init of the real containers.
	linux.Init()
	os.Exit(linuxtest.Guarded(func() int { return run(m) }))
}

// run runs the tests; those on real containers skip themselves without
// root (linuxtest.RequireRoot), the fake-runtime and unit tests run anyway.
func run(m *testing.M) int {
	defer shared.Remove()
	if os.Geteuid() == 0 {
		linuxtest.UseCriu()
	}
	// The Example's containers live under a cgroup parent of their own;
	// its (empty) directories go with the test binary.
	example := fmt.Sprintf("/troupe-example-%d", os.Getpid())
	linuxtest.TrackCgroup(example)
	defer linuxtest.RemoveCgroup(example)
	return m.Run()
}

// quietLogger drops the actors' logs: tests look at behaviour.
func quietLogger() *slog.Logger { return troupetest.QuietLogger() }

// realEnv is a supervisor on the Linux runtime, in its own actor system,
// state dir and cgroup parent.
type realEnv struct {
	t      testing.TB
	dir    string
	rt     *linux.Runtime
	env    *troupetest.Env
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
	return newRealEnvFrom(t, shared.New(t, troupetest.Options{Name: "actors"}), cfg, wrap)
}

// newRealEnvWith is newRealEnv on an Env the test made already.
func newRealEnvWith(t testing.TB, env *troupetest.Env, cfg Config) *realEnv {
	t.Helper()
	return newRealEnvFrom(t, env, cfg, func(rt *linux.Runtime) runtime.Runtime { return rt })
}

func newRealEnvFrom(t testing.TB, env *troupetest.Env, cfg Config, wrap func(*linux.Runtime) runtime.Runtime) *realEnv {
	t.Helper()
	e := &realEnv{t: t, dir: env.Dir, rt: env.Runtime, env: env, system: env.ActorSystem()}
	cfg.Runtime = wrap(env.Runtime)
	var err error
	if cfg.Checkpoints, err = checkpoint.New(filepath.Join(env.Dir, "checkpoints")); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if e.sup, err = Spawn(e.system.Root, cfg); err != nil {
		t.Fatal(err)
	}
	env.OnStop(func() { _ = e.sup.Stop() })
	return e
}

// bundle writes a busybox bundle on the shared rootfs.
func (e *realEnv) bundle(name string, args ...string) string {
	e.t.Helper()
	return e.env.Bundle(e.t, name, args...)
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
