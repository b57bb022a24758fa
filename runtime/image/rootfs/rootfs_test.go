package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// The guard sweeps the temporary directories, mounts included, of a
	// test binary that dies.
	os.Exit(linuxtest.Guarded(m.Run))
}

// layers makes n layer directories, each with a file of its own and all
// with "shared" holding the layer's number, and returns them bottom first.
func layers(t *testing.T, n int) []string {
	t.Helper()
	base := t.TempDir()
	var dirs []string
	for i := range n {
		// Long names, as the layer store's are, to pass a page of
		// mount(2) data with enough of them.
		d := filepath.Join(base, fmt.Sprintf("%03d-%s", i, strings.Repeat("l", 90)))
		for name, content := range map[string]string{fmt.Sprintf("own-%d", i): "own", "shared": fmt.Sprint(i)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// openDir opens a Dir in the test's temporary directory and removes, at
// the end, whatever the test left mounted there.
func openDir(t *testing.T) *Dir {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlays")
	}
	d, err := Open(filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ids, _ := d.List()
		for _, id := range ids {
			_ = unix.Unmount(d.Path(id), unix.MNT_DETACH)
		}
	})
	return d
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateRemove(t *testing.T) {
	tests := []struct {
		name    string
		classic bool
		layers  int
	}{
		{"one layer", false, 1},
		{"three layers", false, 3},
		{"no layers", false, 0},
		{"more layers than a page of mount data holds", false, 60},
		{"classic mount", true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := openDir(t)
			if tc.classic {
				d.mount = classicMountOverlay
			}
			lowers := layers(t, tc.layers)
			root, err := d.Create("c1", lowers)
			if err != nil {
				t.Fatal(err)
			}
			if root != d.Path("c1") {
				t.Errorf("Create returned %s, Path says %s", root, d.Path("c1"))
			}
			// Every layer shows, the top one wins.
			for i := range lowers {
				if got := read(t, filepath.Join(root, fmt.Sprintf("own-%d", i))); got != "own" {
					t.Errorf("own-%d: %q", i, got)
				}
			}
			if tc.layers > 0 {
				if got := read(t, filepath.Join(root, "shared")); got != fmt.Sprint(tc.layers-1) {
					t.Errorf("shared reads %q, want the top layer's %d", got, tc.layers-1)
				}
			}
			// Writes and deletes land in the container's upper directory,
			// never in a layer.
			if err := os.WriteFile(filepath.Join(root, "new"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.layers > 0 {
				if err := os.Remove(filepath.Join(root, "own-0")); err != nil {
					t.Fatal(err)
				}
				if got := read(t, filepath.Join(lowers[0], "own-0")); got != "own" {
					t.Errorf("the layer changed: %q", got)
				}
			}
			if _, err := os.Stat(filepath.Join(d.path, "c1", "upper", "new")); err != nil {
				t.Errorf("the write is not in the upper directory: %v", err)
			}
			if ids, err := d.List(); err != nil || len(ids) != 1 || ids[0] != "c1" {
				t.Errorf("List = %v, %v", ids, err)
			}

			if err := d.Remove("c1"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(d.path, "c1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the container's directory is still there: %v", err)
			}
			for i, l := range lowers {
				if _, err := os.Stat(filepath.Join(l, fmt.Sprintf("own-%d", i))); err != nil {
					t.Errorf("Remove touched layer %d: %v", i, err)
				}
			}
			if err := d.Remove("c1"); err != nil {
				t.Errorf("a second Remove: %v", err)
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	d := openDir(t)
	lowers := layers(t, 1)
	if _, err := d.Create("taken", lowers); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		id     string
		lowers []string
		class  error
	}{
		{"id with a slash", "../x", lowers, errclass.InvalidArgument},
		{"id with a leading dot", ".x", lowers, errclass.InvalidArgument},
		{"taken id", "taken", lowers, errclass.AlreadyExists},
		{"relative layer", "c2", []string{"layer"}, errclass.InvalidArgument},
		{"layer with a colon", "c3", []string{"/a:b"}, errclass.InvalidArgument},
		{"layer with a comma", "c4", []string{"/a,upperdir=/"}, errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.Create(tc.id, tc.lowers); !errors.Is(err, tc.class) {
				t.Errorf("Create(%q, %v) = %v, want %v", tc.id, tc.lowers, err, tc.class)
			}
		})
	}
	// A layer that is not there fails the mount and leaves nothing.
	if _, err := d.Create("c5", []string{filepath.Join(t.TempDir(), "gone")}); err == nil {
		t.Error("Create over a missing layer succeeded")
	}
	if _, err := os.Stat(filepath.Join(d.path, "c5")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Create left its directory: %v", err)
	}
	// Too many layers for the classic mount's one page is a clear error.
	d.mount = classicMountOverlay
	if _, err := d.Create("c6", layers(t, 60)); !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("60 layers through mount(2): %v", err)
	}
}

// TestRemoveBusy: a file held open in the overlay does not stop Remove,
// which detaches the mount rather than deleting through it.
func TestRemoveBusy(t *testing.T) {
	d := openDir(t)
	lowers := layers(t, 2)
	root, err := d.Create("busy", lowers)
	if err != nil {
		t.Fatal(err)
	}
	// A file open in the overlay keeps it busy.
	f, err := os.Open(filepath.Join(root, "own-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.Remove("busy"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.path, "busy")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container's directory is still there: %v", err)
	}
	for i, l := range lowers {
		if _, err := os.Stat(filepath.Join(l, fmt.Sprintf("own-%d", i))); err != nil {
			t.Errorf("Remove touched layer %d: %v", i, err)
		}
	}
}

// A prepared root gets its container's id when claimed; the id then names
// it everywhere, and its removal takes both.
func TestClaim(t *testing.T) {
	d := openDir(t)
	lowers := layers(t, 1)
	name, err := PreparedName()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := PreparedName()
	for _, n := range []string{name, other} {
		if _, err := d.Create(n, lowers); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.Path(name), "written"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ prepared, id string }{{name, "bad/id"}, {"plain", "c1"}, {"+warm-../x", "c1"}} {
		if err := d.Claim(bad.prepared, bad.id); !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("Claim(%q, %q) = %v, want invalid argument", bad.prepared, bad.id, err)
		}
	}
	if err := d.Claim(name, "c1"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(d.Path("c1"), "written")); got != "before" {
		t.Errorf("through the id: %q", got)
	}
	if err := d.Claim(other, "c1"); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("second claim of c1: %v", err)
	}
	if ids, _ := d.List(); !equalSet(ids, "c1", other) {
		t.Errorf("List = %v, want c1 and %s", ids, other)
	}
	if err := d.Unclaim("c1"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := d.List(); !equalSet(ids, name, other) {
		t.Errorf("List after Unclaim = %v", ids)
	}
	if err := d.Claim(name, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"c1", name} {
		if _, err := os.Lstat(filepath.Join(d.path, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	// A removal that stopped half-way leaves a dangling name: listed, and
	// removable.
	if err := os.Symlink(name, filepath.Join(d.path, "c2")); err != nil {
		t.Fatal(err)
	}
	if ids, _ := d.List(); !equalSet(ids, "c2", other) {
		t.Errorf("List with a dangling name = %v", ids)
	}
	for _, id := range []string{"c2", other} {
		if err := d.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := d.List(); len(ids) != 0 {
		t.Errorf("left: %v", ids)
	}
}

// equalSet says whether got holds want, in any order.
func equalSet(got []string, want ...string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}
