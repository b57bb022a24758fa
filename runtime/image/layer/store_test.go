package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
)

// opener returns an open func for data that counts its calls in opens
// (when not nil).
func opener(data []byte, opens *atomic.Int32) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		if opens != nil {
			opens.Add(1)
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}

// checkStoreEmpty fails the test unless st holds no layer and no temporary
// directory.
func checkStoreEmpty(t *testing.T, st *Store) {
	t.Helper()
	for _, d := range []string{"sha256", "tmp"} {
		if left := entries(t, filepath.Join(st.root, d)); len(left) > 0 {
			t.Errorf("the store's %s/ holds %q", d, left)
		}
	}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "store"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStore(t *testing.T) {
	st := openStore(t)
	data := tarOf(t, reg("etc/hostname", "troupe\n"))
	diffID := digest(data)
	ctx := context.Background()
	var opens atomic.Int32

	if _, err := st.Path(diffID); !errors.Is(err, errclass.NotFound) {
		t.Fatalf("path of a missing layer: %v, want NotFound", err)
	}
	// Compressed, as a registry sends it: the diffID is of the tar.
	dir, err := st.Ensure(ctx, diffID, opener(gzipOf(t, data), &opens))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(st.root, "sha256", strings.TrimPrefix(diffID, "sha256:")); dir != want {
		t.Errorf("layer in %s, want %s", dir, want)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "etc/hostname")); err != nil || string(got) != "troupe\n" {
		t.Errorf("etc/hostname holds %q (%v)", got, err)
	}
	var st0 unix.Stat_t
	if err := unix.Stat(st.root, &st0); err != nil || st0.Mode&0o777 != 0o700 {
		t.Errorf("store root mode %o (%v), want 0700", st0.Mode&0o777, err)
	}
	if err := unix.Stat(dir, &st0); err != nil || st0.Mode&0o777 != 0o755 {
		t.Errorf("layer root mode %o (%v), want 0755", st0.Mode&0o777, err)
	}

	again, err := st.Ensure(ctx, diffID, opener(data, &opens))
	if err != nil || again != dir || opens.Load() != 1 {
		t.Errorf("second Ensure: %q, %v, %d opens; want %q, the layer unpacked once", again, err, opens.Load(), dir)
	}
	if p, err := st.Path(diffID); err != nil || p != dir {
		t.Errorf("Path: %q, %v", p, err)
	}
	if err := st.Remove(diffID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Path(diffID); !errors.Is(err, errclass.NotFound) {
		t.Errorf("path of a removed layer: %v, want NotFound", err)
	}
	if err := st.Remove(diffID); !errors.Is(err, errclass.NotFound) {
		t.Errorf("remove a removed layer: %v, want NotFound", err)
	}
	checkStoreEmpty(t, st)
}

func TestStoreRefuses(t *testing.T) {
	data := tarOf(t, reg("a", "x"))
	padded := append(slices.Clone(data), make([]byte, 10240-len(data)%10240)...)
	long := append(slices.Clone(data), make([]byte, maxTrailing+1)...)
	errOpen := errors.New("registry unreachable")
	for _, c := range []struct {
		name   string
		diffID string
		open   func() (io.ReadCloser, error)
		class  error // nil: the error is not the input's
		want   string
	}{
		{"bad diffID", "sha256:xyz", opener(data, nil), errclass.InvalidArgument, "want sha256: and 64"},
		{"upper-case diffID", strings.ToUpper(digest(data)), opener(data, nil), errclass.InvalidArgument, "want sha256:"},
		{"sha512", "sha512:" + strings.Repeat("0", 128), opener(data, nil), errclass.InvalidArgument, "want sha256:"},
		{"wrong digest", digest(append(slices.Clone(data), 0)), opener(data, nil), errclass.InvalidArgument, "has digest " + digest(data)},
		{"too much after the end", digest(long), opener(long, nil), errclass.InvalidArgument, "after the tar stream's end"},
		{"open fails", digest(data), func() (io.ReadCloser, error) { return nil, errOpen }, nil, "registry unreachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			_, err := st.Ensure(context.Background(), c.diffID, c.open)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Ensure: %v, want an error with %q", err, c.want)
			}
			if c.class != nil && !errors.Is(err, c.class) {
				t.Errorf("error %q is not %v", err, c.class)
			}
			if c.class == nil && errors.Is(err, errclass.InvalidArgument) {
				t.Errorf("error %q is InvalidArgument", err)
			}
			checkStoreEmpty(t, st)
		})
	}
	t.Run("record padding", func(t *testing.T) {
		st := openStore(t)
		if _, err := st.Ensure(context.Background(), digest(padded), opener(padded, nil)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenStoreRemovesLeftovers(t *testing.T) {
	st := openStore(t)
	data := tarOf(t, reg("a", "x"))
	if _, err := st.Ensure(context.Background(), digest(data), opener(data, nil)); err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of an unpack leaves.
	half := filepath.Join(st.root, "tmp", "0123456789ab-42")
	if err := os.MkdirAll(filepath.Join(half, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(st.root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if left := entries(t, filepath.Join(st.root, "tmp")); len(left) > 0 {
		t.Errorf("tmp/ holds %q after OpenStore", left)
	}
	if _, err := st.Path(digest(data)); err != nil {
		t.Errorf("a finished layer is gone: %v", err)
	}
}

// TestEnsureOnce: twenty concurrent Ensure calls of one layer unpack it
// once and all get its directory.
func TestEnsureOnce(t *testing.T) {
	st := openStore(t)
	data := tarOf(t, reg("a", strings.Repeat("x", 1<<20)))
	diffID := digest(data)
	var opens atomic.Int32
	gate := make(chan struct{})
	open := func() (io.ReadCloser, error) {
		opens.Add(1)
		<-gate
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	const n = 20
	var started, done sync.WaitGroup
	paths := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			paths[i], errs[i] = st.Ensure(context.Background(), diffID, open)
		}()
	}
	started.Wait()
	testutil.Eventually(t, "the first Ensure to open the layer", func() bool { return opens.Load() > 0 })
	close(gate)
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	testutil.Done(t, "every Ensure to return", finished)
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("Ensure %d: %q, %v; want %q", i, paths[i], errs[i], paths[0])
		}
	}
	if got := opens.Load(); got != 1 {
		t.Errorf("the layer was opened %d times, want once", got)
	}
	checkTmpEmpty(t, st)
}

func checkTmpEmpty(t *testing.T, st *Store) {
	t.Helper()
	if left := entries(t, filepath.Join(st.root, "tmp")); len(left) > 0 {
		t.Errorf("the store's tmp/ holds %q", left)
	}
}

// TestEnsureWaiters: a waiter whose context ends returns its error at once;
// an unpack cancelled by its own caller's context is not the waiters'
// failure, and one of them unpacks the layer instead.
func TestEnsureWaiters(t *testing.T) {
	st := openStore(t)
	data := tarOf(t, reg("a", "x"))
	diffID := digest(data)
	var opens atomic.Int32
	opened := make(chan struct{}, 2)
	gate := make(chan struct{})
	open := func() (io.ReadCloser, error) {
		if opens.Add(1) == 1 {
			opened <- struct{}{}
			<-gate
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := st.Ensure(leaderCtx, diffID, open)
		leader <- err
	}()
	testutil.Receive(t, "the leader to open the layer", opened)

	// Registered, and blocked in open: others wait for it.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Ensure(gone, diffID, open); !errors.Is(err, context.Canceled) {
		t.Errorf("a waiter with a cancelled context: %v, want context.Canceled", err)
	}
	if err := st.Remove(diffID); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("remove while unpacking: %v, want FailedPrecondition", err)
	}

	waiter := make(chan error, 1)
	go func() {
		_, err := st.Ensure(context.Background(), diffID, open)
		waiter <- err
	}()
	cancelLeader()
	close(gate)
	if err := testutil.Receive(t, "the leader's Ensure", leader); !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled leader: %v, want context.Canceled", err)
	}
	if err := testutil.Receive(t, "the waiter's Ensure", waiter); err != nil {
		t.Errorf("the waiter of a cancelled leader: %v, want the layer", err)
	}
	if _, err := st.Path(diffID); err != nil {
		t.Error(err)
	}
	checkTmpEmpty(t, st)
}

// TestEnsureNoSpace unpacks a layer larger than its file system: the error
// is the disk's, not the layer's, and nothing of it stays.
func TestEnsureNoSpace(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "tiny")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	st, err := OpenStore(filepath.Join(mnt, "store"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	data := tarOf(t, reg("small", "x"), reg("big", strings.Repeat("x", 2<<20)))
	_, err = st.Ensure(context.Background(), digest(data), opener(data, nil))
	if !errors.Is(err, unix.ENOSPC) || errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("Ensure on a full disk: %v, want ENOSPC and not InvalidArgument", err)
	}
	if !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("error %q does not name the entry", err)
	}
	checkStoreEmpty(t, st)
}
