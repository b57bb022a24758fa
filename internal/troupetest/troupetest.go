package troupetest

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// QuietLogger drops logs: tests look at behaviour.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Sandbox is a test's own directory and cgroup parent, registered with the
// test guard and removed when the test ends, after killing whatever still
// runs under the cgroup parent.
type Sandbox struct {
	// Dir is the test's directory, in the run's temporary directory.
	Dir string
	// CgroupParent is /troupe-test-<name>-<suffix of Dir>.
	CgroupParent string
}

// NewSandbox makes a Sandbox named after name. Its cleanup is registered
// now, so that it runs after the cleanups the test registers later.
func NewSandbox(t testing.TB, name string) *Sandbox {
	t.Helper()
	dir, err := os.MkdirTemp("", "troupe-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sandbox{Dir: dir, CgroupParent: "/troupe-test-" + filepath.Base(dir)}
	linuxtest.TrackCgroup(s.CgroupParent)
	t.Cleanup(func() {
		// Normally nothing is left: the test deleted what it started.
		if n, err := linuxtest.KillCgroup(s.CgroupParent); err != nil {
			t.Errorf("cleanup: %v", err)
		} else if n > 0 {
			t.Logf("cleanup: killed %d processes left under %s", n, s.CgroupParent)
		}
		linuxtest.RemoveCgroup(s.CgroupParent)
		if err := linuxtest.RemoveAll(s.Dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return s
}

// Shared is what the real environments of one test binary share: a busybox
// rootfs, made on first use (so that a binary whose tests start no
// container does not pay for it), read-only to every bundle.
type Shared struct {
	prefix string
	once   sync.Once
	dir    string
	rootfs string
	err    error
}

// NewShared returns a Shared whose rootfs will be made in a directory
// named after prefix.
func NewShared(prefix string) *Shared { return &Shared{prefix: prefix} }

// Rootfs returns the shared rootfs, making it on first use; it skips the
// test when it cannot start real containers.
func (s *Shared) Rootfs(t testing.TB) string {
	t.Helper()
	linuxtest.RequireRoot(t)
	s.once.Do(func() { s.dir, s.rootfs, s.err = linuxtest.SharedRootfs(s.prefix) })
	if s.err != nil {
		t.Fatalf("busybox rootfs: %v", s.err)
	}
	return s.rootfs
}

// Remove removes the rootfs, if it was made: call it after m.Run.
func (s *Shared) Remove() {
	if s.dir != "" {
		linuxtest.RemoveAll(s.dir)
	}
}

// Options shape an Env.
type Options struct {
	// Name names the Env's directory and cgroup parent (see NewSandbox).
	Name string
	// Runtime are the runtime's options; StateDir and CgroupParent are
	// the Sandbox's when left empty.
	Runtime linux.Options
}

// Env is a test's real environment: a Linux runtime on a Sandbox of its
// own, and the shared rootfs for its bundles.
type Env struct {
	*Sandbox
	// Rootfs is the shared busybox rootfs.
	Rootfs string
	// Runtime is the test's runtime.
	Runtime *linux.Runtime
	stops   []func()
}

// New makes an Env for t, removed when t ends: its containers are deleted
// (killed if need be), then what was stacked on it stops (OnStop), then the
// runtime closes and the Sandbox goes. It skips t when t cannot start real
// containers.
func (s *Shared) New(t testing.TB, o Options) *Env {
	t.Helper()
	rootfs := s.Rootfs(t)
	e := &Env{Sandbox: NewSandbox(t, o.Name), Rootfs: rootfs}
	if o.Runtime.StateDir == "" {
		o.Runtime.StateDir = filepath.Join(e.Dir, "state")
	}
	if o.Runtime.CgroupParent == "" {
		o.Runtime.CgroupParent = e.CgroupParent
	}
	rt, err := linux.New(o.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	e.Runtime = rt
	t.Cleanup(func() {
		linuxtest.DeleteAll(t, rt)
		for i := len(e.stops) - 1; i >= 0; i-- {
			e.stops[i]()
		}
		rt.Close()
	})
	return e
}

// OnStop stacks stop on the runtime: it runs when the test ends, after the
// containers are deleted and before the runtime closes, the last stacked
// first. Call it from the test's goroutine, while setting up.
func (e *Env) OnStop(stop func()) { e.stops = append(e.stops, stop) }

// ActorSystem returns a new actor system that logs nothing, shut down when
// the test ends (stacked with OnStop: a supervisor spawned in it and
// stacked after it stops first).
func (e *Env) ActorSystem() *actor.ActorSystem {
	quiet := QuietLogger()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	e.OnStop(system.Shutdown)
	return system
}

// Bundle writes a busybox bundle on the shared rootfs in the Env's
// directory, whose init runs args (sleep 3600 without), and returns its
// path.
func (e *Env) Bundle(t testing.TB, name string, args ...string) string {
	t.Helper()
	return e.BundleWith(t, name, busybox.Options{Args: args})
}

// BundleWith is Bundle with more busybox options; their Rootfs is the
// shared one.
func (e *Env) BundleWith(t testing.TB, name string, o busybox.Options) string {
	t.Helper()
	o.Rootfs = e.Rootfs
	p, err := busybox.Bundle(filepath.Join(e.Dir, "bundles", name), o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
