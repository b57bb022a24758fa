package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
)

func TestStoreRoundTrip(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	images, err := s.Reserve("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(images); err != nil || !fi.IsDir() {
		t.Fatalf("images dir: %v", err)
	}
	// Reserved but not committed: not listed, not found.
	if list, _ := s.List("web"); len(list) != 0 {
		t.Errorf("an unfinished checkpoint is listed: %v", list)
	}
	if _, err := s.Reserve("web", "cp1"); !errors.Is(err, errclass.AlreadyExists) {
		t.Errorf("second reserve: %v, want already exists", err)
	}
	c := Checkpoint{Name: "cp1", TCP: true, Created: time.Now(), Container: "web", BundlePath: "/b"}
	if err := s.Commit("web", c); err != nil {
		t.Fatal(err)
	}
	got, dir, err := s.Get("web", "cp1")
	if err != nil || got.Name != "cp1" || !got.TCP || got.BundlePath != "/b" || dir != images {
		t.Fatalf("get: %+v %s %v", got, dir, err)
	}
	if list, err := s.List("web"); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := s.Delete("web", "cp1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get("web", "cp1"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if err := s.Delete("web", "cp1"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "web")); !os.IsNotExist(err) {
		t.Errorf("empty container dir left behind")
	}
}

func TestStoreRefusesBadNames(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, name string }{{"..", "x"}, {"web", ".."}, {"web", "a/b"}, {"", "x"}, {"web", ""}} {
		if _, err := s.Reserve(tc.id, tc.name); !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("Reserve(%q, %q): %v, want invalid argument", tc.id, tc.name, err)
		}
	}
	images, err := s.Reserve("web", "half")
	if err != nil {
		t.Fatal(err)
	}
	s.Abandon("web", "half")
	if _, err := os.Stat(images); !os.IsNotExist(err) {
		t.Errorf("abandoned checkpoint left %s", images)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(images))); !os.IsNotExist(err) {
		t.Errorf("an abandoned only checkpoint left its container's directory: %v", err)
	}
}

func TestRemoveUnfinished(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reserve := func(id, name string) string {
		t.Helper()
		images, err := s.Reserve(id, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(images, "pages-1.img"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return images
	}
	done := reserve("web", "done")
	if err := s.Commit("web", Checkpoint{Name: "done"}); err != nil {
		t.Fatal(err)
	}
	// What a restore killed midway leaves: CRIU's cgroup yard, mounted in
	// the finished checkpoint's images.
	yard := filepath.Join(done, ".criu.cgyard.test")
	if os.Geteuid() == 0 {
		if err := os.Mkdir(yard, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("yard", yard, "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(yard, unix.MNT_DETACH) })
	}
	reserve("web", "half")
	reserve("db", "half")
	removed, err := s.RemoveUnfinished()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(removed, " "), "db/half web/half"; got != want {
		t.Errorf("removed %q, want %q", got, want)
	}
	if list, _ := s.List("web"); len(list) != 1 || list[0].Name != "done" {
		t.Errorf("web's checkpoints after: %+v", list)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(yard, &st); os.Geteuid() == 0 && (err != nil || st.Type == unix.TMPFS_MAGIC) {
		t.Errorf("the cgroup yard in a finished checkpoint is still mounted (statfs: %v)", err)
	}
	// The names are free again, and a container left without any is gone.
	if _, err := s.Reserve("web", "half"); err != nil {
		t.Errorf("the name of an unfinished checkpoint stays taken: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "db")); !os.IsNotExist(err) {
		t.Errorf("db's empty directory stays: %v", err)
	}
}
