package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// The tests mount tmpfs and overlayfs: the guard unmounts them if the
	// binary dies before its cleanups.
	os.Exit(linuxtest.Guarded(m.Run))
}

// mtime is the time of every entry the tests make unless told otherwise.
var mtime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body: body}
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mtime}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: mtime}}
}

func fifo(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o620, ModTime: mtime}}
}

func device(name string, typ byte, major, minor int64) ent {
	return ent{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: mtime}}
}

// with returns e changed by f, for the fields the constructors leave alone.
func (e ent) with(f func(h *tar.Header)) ent {
	f(&e.hdr)
	return e
}

// tarOf returns the tar stream of ents, end marker included.
func tarOf(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			tb.Fatalf("tar body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sandbox is a test's directory: the layer is unpacked into layer/, and
// outside/ is what a hostile layer would like to write into.
type sandbox struct {
	base, layer, outside string
	before               map[string]string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	base := t.TempDir()
	s := &sandbox{base: base, layer: filepath.Join(base, "layer"), outside: filepath.Join(base, "outside")}
	if err := os.MkdirAll(filepath.Join(s.outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.before = snapshot(t, base)
	return s
}

// checkOutside fails the test if anything in the sandbox but layer/ and
// store/ changed: a file, a mode, an owner, an xattr.
func (s *sandbox) checkOutside(t *testing.T) {
	t.Helper()
	after := snapshot(t, s.base)
	for _, p := range slices.Sorted(maps.Keys(after)) {
		// The sandbox's own mtime changes as layer/ and store/ appear.
		if p == "." || p == "layer" || strings.HasPrefix(p, "layer/") || p == "store" || strings.HasPrefix(p, "store/") {
			continue
		}
		if s.before[p] != after[p] {
			t.Errorf("outside the layer, %s changed: %q, was %q", p, after[p], s.before[p])
		}
	}
	for p := range s.before {
		if _, ok := after[p]; !ok {
			t.Errorf("outside the layer, %s is gone", p)
		}
	}
}

// snapshot describes every file under base, by relative path.
func snapshot(t *testing.T, base string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := []string{fmt.Sprintf("%o %d %d:%d", st.Mode, st.Mtim.Nano(), st.Uid, st.Gid)}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc = append(desc, string(data))
		}
		desc = append(desc, xattrs(t, p)...)
		m[rel] = strings.Join(desc, " ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// xattrs lists path's extended attributes as name=value.
func xattrs(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out = append(out, name+"="+string(v[:vn]))
	}
	return out
}

// entries lists what is under dir, by relative path.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func gzipOf(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
