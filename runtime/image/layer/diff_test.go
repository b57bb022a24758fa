package layer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiffRoundTrip: an upper directory written by Diff and unpacked by
// Unpack comes back as it was: files, owners, modes, symlinks, hard links,
// kept xattrs, whiteouts and opaque directories.
func TestDiffRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes whiteout devices and trusted xattrs")
	}
	upper := filepath.Join(t.TempDir(), "upper")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(upper, "etc", "conf.d"), 0o755))
	must(os.WriteFile(filepath.Join(upper, "etc", "motd"), []byte("changed\n"), 0o640))
	must(os.Chown(filepath.Join(upper, "etc", "motd"), 1000, 2000))
	must(unix.Lsetxattr(filepath.Join(upper, "etc", "motd"), "user.note", []byte("kept"), 0))
	must(os.Link(filepath.Join(upper, "etc", "motd"), filepath.Join(upper, "etc", "motd.link")))
	must(os.Symlink("/etc/motd", filepath.Join(upper, "motd")))
	must(os.Mkdir(filepath.Join(upper, "var"), 0o700))
	// A deleted file and a directory made anew over one of the image's.
	must(unix.Mknod(filepath.Join(upper, "etc", "gone"), unix.S_IFCHR|0o000, 0))
	must(unix.Lsetxattr(filepath.Join(upper, "etc", "conf.d"), overlayOpaque, []byte("y"), 0))
	must(os.WriteFile(filepath.Join(upper, "etc", "conf.d", "only"), []byte("x"), 0o644))

	var tarball bytes.Buffer
	must(Diff(context.Background(), upper, &tarball))
	back := filepath.Join(t.TempDir(), "back")
	if _, err := Unpack(context.Background(), &tarball, back, Limits{}); err != nil {
		t.Fatal(err)
	}

	if got, want := entries(t, back), entries(t, upper); !slices.Equal(got, want) {
		t.Errorf("entries: got %v, want %v", got, want)
	}
	var a, b unix.Stat_t
	must(unix.Lstat(filepath.Join(back, "etc", "motd"), &a))
	must(unix.Lstat(filepath.Join(back, "etc", "motd.link"), &b))
	if a.Ino != b.Ino {
		t.Error("the hard link came back as a copy")
	}
	if a.Uid != 1000 || a.Gid != 2000 || a.Mode&0o777 != 0o640 {
		t.Errorf("motd: uid %d gid %d mode %o", a.Uid, a.Gid, a.Mode&0o777)
	}
	if x := xattrs(t, filepath.Join(back, "etc", "motd")); !slices.Contains(x, "user.note=kept") {
		t.Errorf("motd's xattrs: %v", x)
	}
	if l, err := os.Readlink(filepath.Join(back, "motd")); err != nil || l != "/etc/motd" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	var w unix.Stat_t
	must(unix.Lstat(filepath.Join(back, "etc", "gone"), &w))
	if w.Mode&unix.S_IFMT != unix.S_IFCHR || w.Rdev != 0 {
		t.Errorf("the whiteout came back as mode %o rdev %d", w.Mode, w.Rdev)
	}
	if !isOpaque(filepath.Join(back, "etc", "conf.d")) {
		t.Error("the opaque directory came back transparent")
	}
	var v unix.Stat_t
	must(unix.Lstat(filepath.Join(back, "var"), &v))
	if v.Mode&0o777 != 0o700 {
		t.Errorf("var: mode %o", v.Mode&0o777)
	}
}
