package checkpoint

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

// sampleCheckpoint makes a committed checkpoint web/cp1 with two images.
func sampleCheckpoint(t *testing.T, s *Store) {
	t.Helper()
	images, err := s.Reserve("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"core-1.img": "core", "pages-1.img": "pages", "ifaddr-10.img": "x"} {
		if err := os.WriteFile(filepath.Join(images, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit("web", Checkpoint{Name: "cp1", Container: "web", BundlePath: "/b", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	src, _ := New(t.TempDir())
	dst, _ := New(t.TempDir())
	sampleCheckpoint(t, src)
	var buf bytes.Buffer
	if err := src.Export("web", "cp1", &buf); err != nil {
		t.Fatal(err)
	}
	c, err := dst.Import("web2", "moved", &buf, DefaultMaxArchive)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "moved" || c.Container != "web" || c.BundlePath != "/b" {
		t.Errorf("imported %+v", c)
	}
	_, images, err := dst.Get("web2", "moved")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"pages-1.img": "pages", "ifaddr-10.img": "x"} {
		if data, _ := os.ReadFile(filepath.Join(images, name)); string(data) != want {
			t.Errorf("%s = %q, want %q", name, data, want)
		}
	}
	if err := src.Export("web", "nope", &buf); !errors.Is(err, errclass.NotFound) {
		t.Errorf("export of a missing checkpoint: %v", err)
	}
}

// entry is one tar entry of a hand-made archive.
type entry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o600, Size: int64(len(e.body)), Linkname: e.link}
		if e.typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportRefusesMaliciousArchives(t *testing.T) {
	meta := entry{name: "checkpoint.json", typeflag: tar.TypeReg, body: `{"name": "x", "container": "web"}`}
	img := entry{name: "images/core-1.img", typeflag: tar.TypeReg, body: "core"}
	tests := []struct {
		name string
		data []byte
		max  int64
	}{
		{"absolute path", archive(t, meta, entry{name: "/etc/evil", typeflag: tar.TypeReg, body: "x"}), DefaultMaxArchive},
		{"dot dot", archive(t, meta, entry{name: "../evil", typeflag: tar.TypeReg, body: "x"}), DefaultMaxArchive},
		{"dot dot in images", archive(t, meta, entry{name: "images/../../evil", typeflag: tar.TypeReg, body: "x"}), DefaultMaxArchive},
		{"nested", archive(t, meta, entry{name: "images/a/b", typeflag: tar.TypeReg, body: "x"}), DefaultMaxArchive},
		{"symlink", archive(t, meta, entry{name: "images/link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}), DefaultMaxArchive},
		{"hard link", archive(t, meta, entry{name: "images/hard", typeflag: tar.TypeLink, link: "/etc/passwd"}), DefaultMaxArchive},
		{"device", archive(t, meta, entry{name: "images/dev", typeflag: tar.TypeChar}), DefaultMaxArchive},
		{"directory", archive(t, meta, entry{name: "images/sub/", typeflag: tar.TypeDir}), DefaultMaxArchive},
		{"too large", archive(t, meta, img), 10},
		{"no metadata", archive(t, img), DefaultMaxArchive},
		{"bad metadata", archive(t, entry{name: "checkpoint.json", typeflag: tar.TypeReg, body: "{"}, img), DefaultMaxArchive},
		{"not a tar", []byte("this is not a tar archive at all, not even close to one........"), DefaultMaxArchive},
		{"empty", nil, DefaultMaxArchive},
		{"truncated in an entry", archive(t, meta, img)[:3*512+2], DefaultMaxArchive},
		{"truncated in a header", archive(t, meta, img)[:2*512+100], DefaultMaxArchive},
		// Go's tar reader takes this for a whole archive.
		{"cut where an entry ends", func() []byte { a := archive(t, meta, img); return a[:len(a)-2*512] }(), DefaultMaxArchive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s, _ := New(root)
			_, err := s.Import("web", "cp1", bytes.NewReader(tc.data), tc.max)
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("import: %v, want invalid argument", err)
			}
			if _, err := os.Stat(filepath.Join(root, "web")); !os.IsNotExist(err) {
				t.Errorf("a refused import left its directory behind")
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(root), "evil")); err == nil {
				t.Errorf("a refused import wrote outside the store")
			}
		})
	}
}
