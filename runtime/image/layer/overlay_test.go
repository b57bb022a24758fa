package layer

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOverlay mounts two unpacked layers with overlayfs, as a container's
// root will be, and checks that the kernel reads the upper layer's whiteout
// and opaque directory as the image says.
func TestOverlay(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	lowerTar := tarOf(t,
		dir("etc/"), reg("etc/hostname", "lower"), reg("etc/hosts", "127.0.0.1 localhost\n"),
		dir("data/"), reg("data/old1", "1"), reg("data/old2", "2"),
		dir("keep/"), reg("keep/a", "a"),
	)
	upperTar := tarOf(t,
		dir("etc/"), reg("etc/.wh.hosts", ""), reg("etc/hostname", "upper"),
		dir("data/"), reg("data/.wh..wh..opq", ""), reg("data/new", "new"),
		reg("keep/b", "b"),
	)
	lower, err := st.Ensure(ctx, digest(lowerTar), opener(lowerTar, nil))
	if err != nil {
		t.Fatal(err)
	}
	upper, err := st.Ensure(ctx, digest(upperTar), opener(upperTar, nil))
	if err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	rw, wd, merged := filepath.Join(work, "upper"), filepath.Join(work, "work"), filepath.Join(work, "merged")
	for _, d := range []string{rw, wd, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + upper + ":" + lower + ",upperdir=" + rw + ",workdir=" + wd
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})

	for dir, want := range map[string][]string{
		"etc":  {"hostname"},
		"data": {"new"},
		"keep": {"a", "b"},
	} {
		if got := names(t, filepath.Join(merged, dir)); !slices.Equal(got, want) {
			t.Errorf("merged %s/ holds %q, want %q", dir, got, want)
		}
	}
	if got, err := os.ReadFile(filepath.Join(merged, "etc/hostname")); err != nil || string(got) != "upper" {
		t.Errorf("merged etc/hostname: %q (%v), want the upper layer's", got, err)
	}
	if _, err := os.Stat(filepath.Join(merged, "etc/hosts")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited out etc/hosts: %v, want not there", err)
	}

	// A container's writes go to its own upper directory, never into the
	// shared layers.
	before := snapshot(t, lower)
	if err := os.WriteFile(filepath.Join(merged, "keep/a"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(merged, "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, lower); !maps.Equal(before, after) {
		t.Error("a write through the overlay changed the lower layer")
	}
	if got, err := os.ReadFile(filepath.Join(rw, "keep/a")); err != nil || string(got) != "changed" {
		t.Errorf("the write is not in the upper dir: %q (%v)", got, err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
