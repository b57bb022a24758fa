package remote_test

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/fake"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	"github.com/troupe-run/troupe/runtime/remote"
)

// The real runtime is an engine as it is.
var _ remote.Engine = (*linux.Runtime)(nil)

var shared = troupetest.NewShared("troupe-remote-test-")

func TestMain(m *testing.M) {
	// This test binary is also the container init.
	linux.Init()
	os.Exit(linuxtest.Guarded(func() int {
		code := m.Run()
		shared.Remove()
		return code
	}))
}

// socketpair returns the two ends of a connected unix stream socket, closed
// when the test ends.
func socketpair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// served is a client and the server it talks to, over a socketpair.
type served struct {
	*remote.Client
	// stop ends the server (as if the engine died) and returns Serve's
	// error.
	stop func() error
}

// serve serves rt over a socketpair and returns the client; both end when
// the test does.
func serve(t testing.TB, rt remote.Engine) served {
	t.Helper()
	a, b := socketpair(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- remote.Serve(ctx, b, rt) }()
	cl := remote.NewClient(a)
	var serveErr error
	ended := false
	stop := func() error {
		if !ended {
			cancel()
			serveErr = testutil.Receive(t, "Serve's return", errc)
			ended = true
		}
		return serveErr
	}
	t.Cleanup(func() {
		cl.Close()
		stop()
	})
	return served{Client: cl, stop: stop}
}

// fakeEngine is the fake runtime as an engine: it prepares nothing and has
// nothing to reconcile. err, when set, is what RemovePrepared fails with.
type fakeEngine struct {
	*fake.Runtime
	err error
}

func (e fakeEngine) Prepare(context.Context, string) (runtime.Prepared, error) {
	return nil, errors.New("the fake prepares nothing")
}
func (e fakeEngine) Reconcile(context.Context) (runtime.Reconciled, error) {
	return runtime.Reconciled{Destroyed: []string{"half-made"}}, e.err
}
func (e fakeEngine) RemovePrepared(context.Context) error { return e.err }
func (e fakeEngine) LogDropped() uint64                   { return 42 }

// bundlePath is the fake's bundle: it is never read.
const bundlePath = "/bundles/remote"

func startFake(t *testing.T, rt runtime.Runtime, id string) runtime.Container {
	t.Helper()
	c, err := rt.Start(context.Background(), id, runtime.StartOptions{BundlePath: bundlePath})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), true); err != nil && !errors.Is(err, errclass.Unavailable) {
			t.Errorf("cleanup: delete %s: %v", id, err)
		}
	})
	return c
}
