package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
)

// capability is a valid security.capability value (revision 2, effective,
// CAP_NET_RAW permitted): the kernel refuses a malformed one.
func capability() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_NET_RAW)
	return string(b)
}

// resolvers are the two ways Unpack opens directories: openat2, and the
// walk of kernels without it. Both run every test of what Unpack makes.
var resolvers = []struct {
	name      string
	noOpenat2 bool
}{{"openat2", false}, {"walk", true}}

func TestUnpack(t *testing.T) {
	for _, res := range resolvers {
		t.Run(res.name, func(t *testing.T) { testUnpack(t, res.noOpenat2) })
	}
}

func testUnpack(t *testing.T, noOpenat2 bool) {
	s := newSandbox(t)
	data := tarOf(t,
		dir("./").with(func(h *tar.Header) { h.Mode = 0o751 }),
		dir("/etc/").with(func(h *tar.Header) { h.Mode = 0o750; h.Uid = 1; h.Gid = 2 }),
		reg("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		reg("etc/shadow", "shadow"),
		reg("bin/su", "su").with(func(h *tar.Header) {
			h.Mode = 0o4755
			h.PAXRecords = map[string]string{
				"SCHILY.xattr.security.capability":      capability(),
				"SCHILY.xattr.user.note":                "kept",
				"SCHILY.xattr.trusted.evil":             "dropped",
				"SCHILY.xattr.trusted.overlay.redirect": "/etc",
				"SCHILY.xattr.user.overlay.opaque":      "y",
				"SCHILY.xattr.security.selinux":         "system_u:object_r:shadow_t",
			}
		}),
		hardlink("bin/su2", "/bin/su"),
		symlink("bin/sh", "/bin/busybox"),
		symlink("escape", "../../../../etc/shadow"),
		hardlink("escape2", "escape"),
		fifo("run/fifo").with(func(h *tar.Header) { h.Uid = 7 }),
		reg("usr/lib/deep/file", "implicit parents"),
		reg("dup", "first"),
		reg("dup", "second"),
		dir("forged").with(func(h *tar.Header) {
			h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
		}),
		// Whiteouts of the lower layers.
		reg("etc/.wh.group", ""),
		dir("var/"),
		reg("var/log", "hidden below"),
		reg("var/.wh..wh..opq", ""),
		// A whiteout and an entry of the same name in one layer: the
		// entry stays, and a directory hides the lower layers' one.
		reg(".wh.first", ""),
		dir("first/"),
		dir("second/"),
		reg("second/x", "x"),
		reg(".wh.second", ""),
		reg("third", "a file"),
		reg(".wh.third", ""),
		// AUFS bookkeeping is skipped.
		dir(".wh..wh.plnk/"),
		reg(".wh..wh.plnk/1234.5678", "aufs"),
	)
	stats, err := unpackInto(context.Background(), bytes.NewReader(data), s.layer, Limits{}, noOpenat2)
	if err != nil {
		t.Fatal(err)
	}
	s.checkOutside(t)

	if want := (Stats{Entries: 27, Bytes: 80, Whiteouts: 5, DroppedXattrs: 5}); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
	p := func(rel string) string { return filepath.Join(s.layer, rel) }
	stat := func(rel string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(p(rel), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		rel       string
		mode      uint32 // type and permissions
		uid, gid  uint32
		checkTime bool
	}{
		{".", unix.S_IFDIR | 0o751, 0, 0, true},
		{"etc", unix.S_IFDIR | 0o750, 1, 2, true},
		{"etc/passwd", unix.S_IFREG | 0o644, 0, 0, true},
		{"bin/su", unix.S_IFREG | 0o4755, 0, 0, true},
		{"bin", unix.S_IFDIR | 0o755, 0, 0, false},
		{"bin/sh", unix.S_IFLNK | 0o777, 0, 0, true},
		{"run/fifo", unix.S_IFIFO | 0o620, 7, 0, true},
		{"usr/lib/deep", unix.S_IFDIR | 0o755, 0, 0, false},
		{"etc/group", unix.S_IFCHR, 0, 0, false},
		{"first", unix.S_IFDIR | 0o755, 0, 0, true},
		{"second", unix.S_IFDIR | 0o755, 0, 0, true},
		{"third", unix.S_IFREG | 0o644, 0, 0, true},
	} {
		st := stat(c.rel)
		if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", c.rel, st.Mode, st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
		if c.checkTime && st.Mtim.Sec != mtime.Unix() {
			t.Errorf("%s: mtime %d, want %d", c.rel, st.Mtim.Sec, mtime.Unix())
		}
	}
	if st := stat("etc/group"); st.Rdev != 0 {
		t.Errorf("whiteout etc/group: rdev %d, want 0", st.Rdev)
	}
	if su, su2 := stat("bin/su"), stat("bin/su2"); su.Ino != su2.Ino {
		t.Error("bin/su2 is not a hard link of bin/su")
	}
	if l, l2 := stat("escape"), stat("escape2"); l.Ino != l2.Ino || l2.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Error("escape2 is not a hard link of the symlink escape")
	}
	for rel, want := range map[string]string{"bin/sh": "/bin/busybox", "escape": "../../../../etc/shadow"} {
		if got, err := os.Readlink(p(rel)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", rel, got, err, want)
		}
	}
	for rel, want := range map[string]string{"dup": "second", "usr/lib/deep/file": "implicit parents", "third": "a file"} {
		if got, err := os.ReadFile(p(rel)); err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", rel, got, err, want)
		}
	}

	// Xattrs: kept, dropped, and the opaque markers made here.
	if got := xattrs(t, p("bin/su")); !slices.Equal(got, []string{"security.capability=" + capability(), "user.note=kept"}) &&
		!slices.Equal(got, []string{"user.note=kept", "security.capability=" + capability()}) {
		t.Errorf("bin/su xattrs %q, want security.capability and user.note only", got)
	}
	for rel, opaque := range map[string]bool{"var": true, "first": true, "second": true, "forged": false, "etc": false} {
		v := make([]byte, 8)
		n, err := unix.Getxattr(p(rel), overlayOpaque, v)
		if opaque && (err != nil || string(v[:n]) != "y") {
			t.Errorf("%s: %s = %q (%v), want y", rel, overlayOpaque, v[:n], err)
		}
		if !opaque && !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s: %s = %q (%v), want none", rel, overlayOpaque, v[:n], err)
		}
	}
	if _, err := os.Lstat(p(".wh..wh.plnk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AUFS bookkeeping unpacked: %v", err)
	}
	if _, err := os.Lstat(p("var/log")); err != nil {
		t.Errorf("var/log, of this layer, is gone: %v", err)
	}
}

// TestUnpackRefuses feeds hostile and broken layers to Unpack and to a
// Store: each is refused with InvalidArgument and an error naming the
// entry, nothing outside the layer changes, and the store keeps nothing.
func TestUnpackRefuses(t *testing.T) {
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		name   string
		data   func(t *testing.T, s *sandbox) []byte
		limits Limits
		want   string // in the error
	}{
		{name: "dotdot", want: `"../escape": "../escape" climbs out`, data: ents(reg("../escape", "x"))},
		{name: "dotdot inside", want: "climbs out", data: ents(reg("a/../../escape", "x"))},
		{name: "absolute dotdot", want: "climbs out", data: ents(reg("/../outside/secret", "x"))},
		{name: "parent symlink relative", want: `"evil/pwned": parent "evil" is a symlink`, data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", "../outside"), reg("evil/pwned", "x"))
		}},
		{name: "parent symlink absolute", want: "is a symlink", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), reg("evil/pwned", "x"))
		}},
		{name: "grandparent symlink", want: `parent "a/evil" is a symlink`, data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, dir("a/"), symlink("a/evil", s.outside), reg("a/evil/sub/pwned", "x"))
		}},
		{name: "directory through symlink", want: "is a symlink", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), dir("evil/newdir/"))
		}},
		{name: "symlink through symlink", want: "is a symlink", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), symlink("evil/s", "x"))
		}},
		{name: "fifo through symlink", want: "is a symlink", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), fifo("evil/f"))
		}},
		{name: "whiteout through symlink", want: `"evil/.wh.secret": parent "evil" is a symlink`, data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), reg("evil/.wh.secret", ""))
		}},
		{name: "opaque through symlink", want: "is a symlink", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), reg("evil/.wh..wh..opq", ""))
		}},
		{name: "hard link into symlinked dir", want: `"evil/h": parent "evil" is a symlink`, data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, reg("f", "x"), symlink("evil", s.outside), hardlink("evil/h", "f"))
		}},
		{name: "parent is a file", want: `parent "f" is not a directory`, data: ents(reg("f", "x"), reg("f/g", "y"))},
		{name: "hard link out", want: "climbs out", data: ents(hardlink("h", "../outside/secret"))},
		{name: "hard link absolute", want: "is not in this layer", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, hardlink("h", filepath.Join(s.outside, "secret")))
		}},
		{name: "hard link through symlink", want: `parent "evil" is a symlink`, data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, symlink("evil", s.outside), hardlink("h", "evil/secret"))
		}},
		{name: "hard link before target", want: `hard link target "later" is not in this layer`, data: ents(hardlink("h", "later"), reg("later", "x"))},
		{name: "hard link to directory", want: "is not a file, symlink or fifo", data: ents(dir("d/"), hardlink("h", "d"))},
		{name: "hard link to whiteout", want: "is not a file, symlink or fifo", data: ents(reg(".wh.gone", ""), hardlink("h", "gone"))},
		{name: "hard link to root", want: "hard link to the layer's root", data: ents(hardlink("h", "/"))},
		{name: "hard link to itself", want: "hard link to itself", data: ents(reg("h", "x"), hardlink("h", "./h"))},
		{name: "char device", want: `"null": device nodes are not allowed`, data: ents(device("null", tar.TypeChar, 1, 3))},
		{name: "whiteout-like char device", want: "device nodes are not allowed", data: ents(device("wh", tar.TypeChar, 0, 0))},
		{name: "block device", want: "device nodes are not allowed", data: ents(device("sda", tar.TypeBlock, 8, 0))},
		{name: "unknown type", want: "unsupported entry type", data: ents(reg("x", "").with(func(h *tar.Header) { h.Typeflag = 'Z' }))},
		{name: "file as root", want: "only a directory can be the layer's root", data: ents(reg(".", ""))},
		{name: "whiteout of root", want: "a whiteout of", data: ents(reg("/.wh.", ""))},
		{name: "whiteout of dot", want: "a whiteout of", data: ents(reg("a/.wh..", ""))},
		{name: "whiteout of dotdot", want: "a whiteout of", data: ents(reg(".wh...", ""))},
		{name: "opaque root", want: "opaque marker at the layer's root", data: ents(reg("./.wh..wh..opq", ""))},
		{name: "empty symlink", want: "symlink target", data: ents(symlink("s", ""))},
		{name: "long symlink", want: "symlink target", limits: Limits{MaxPathLen: 16}, data: ents(symlink("s", strings.Repeat("a/", 9)))},
		{name: "entries", want: "more than 3 entries", limits: Limits{MaxEntries: 3}, data: ents(reg("a", ""), reg("b", ""), reg("c", ""), reg("d", ""))},
		{name: "bytes", want: `"big": content over`, limits: Limits{MaxBytes: 10}, data: ents(reg("big", "01234567890"))},
		{name: "bytes summed", want: `"b": content over`, limits: Limits{MaxBytes: 10}, data: ents(reg("a", "012345"), reg("b", "012345"))},
		{name: "whiteout content", want: "content over", limits: Limits{MaxBytes: 10}, data: ents(reg(".wh.x", "01234567890"))},
		{name: "path length", want: "path longer than 16", limits: Limits{MaxPathLen: 16}, data: ents(reg("abcdefgh/ijklmnopq", ""))},
		{name: "depth", want: "deeper than 3", limits: Limits{MaxDepth: 3}, data: ents(reg("a/b/c/d", ""))},
		{name: "long name", want: "a name longer than 255", data: ents(reg("a/"+long, ""))},
		{name: "empty stream", want: "end-of-archive marker", data: func(*testing.T, *sandbox) []byte { return nil }},
		{name: "not tar", want: "not a valid tar stream", data: func(*testing.T, *sandbox) []byte {
			return bytes.Repeat([]byte("not a tar stream, just text. "), 40)
		}},
		{name: "cut in an entry", want: `"big": the stream ends early`, data: func(t *testing.T, s *sandbox) []byte {
			data := tarOf(t, reg("small", "x"), reg("big", strings.Repeat("x", 4096)))
			return data[:512*3+1000]
		}},
		{name: "cut in a header", want: "the stream ends early", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, reg("a", "x"), reg("b", "y"))[:512*2+100]
		}},
		{name: "cut between entries", want: "without tar's end-of-archive marker", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, reg("a", "x"), reg("b", "y"))[:512*4]
		}},
		{name: "cut in the end marker", want: "without tar's end-of-archive marker", data: func(t *testing.T, s *sandbox) []byte {
			return tarOf(t, reg("a", "x"))[:512*3]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, res := range resolvers {
				s := newSandbox(t)
				data := c.data(t, s)
				_, err := unpackInto(context.Background(), bytes.NewReader(data), s.layer, c.limits, res.noOpenat2)
				checkRefused(t, err, c.want)
				s.checkOutside(t)
			}

			// The same through a store, whose digest it has.
			s := newSandbox(t)
			data := c.data(t, s)
			st, err := OpenStore(filepath.Join(s.base, "store"), c.limits)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Ensure(context.Background(), digest(data), opener(data, nil))
			checkRefused(t, err, c.want)
			checkStoreEmpty(t, st)
			s.checkOutside(t)
		})
	}
}

// ents makes a data func of a fixed layer.
func ents(es ...ent) func(*testing.T, *sandbox) []byte {
	return func(t *testing.T, _ *sandbox) []byte { return tarOf(t, es...) }
}

func checkRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", want)
	}
	if !errors.Is(err, errclass.InvalidArgument) {
		t.Errorf("error %q is not InvalidArgument", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestUnpackNeedsEmptyDir(t *testing.T) {
	s := newSandbox(t)
	if err := os.Mkdir(s.layer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.layer, "target"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Unpack(context.Background(), bytes.NewReader(tarOf(t, hardlink("h", "target"))), s.layer, Limits{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("unpack into a directory with a file: %v, want not empty", err)
	}
}

func TestUnpackContext(t *testing.T) {
	data := tarOf(t, reg("a", "x"), reg("big", strings.Repeat("x", 1<<20)), reg("c", "x"))
	for _, c := range []struct {
		name     string
		cancelAt int64 // after this many bytes read, or before any
	}{
		{"before", -1},
		{"between entries", 1024},
		{"inside a file", 256 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancelAt < 0 {
				cancel()
			}
			r := &cancelReader{r: bytes.NewReader(data), at: c.cancelAt, cancel: cancel}
			_, err := Unpack(ctx, r, s.layer, Limits{})
			if !errors.Is(err, context.Canceled) || errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("unpack with its context cancelled: %v, want context.Canceled only", err)
			}
			if _, err := os.Lstat(filepath.Join(s.layer, "c")); err == nil {
				t.Error("the last entry was made after the cancel")
			}
		})
	}
}

// cancelReader cancels once at bytes have been read.
type cancelReader struct {
	r      io.Reader
	n, at  int64
	cancel func()
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 4096)])
	c.n += int64(n)
	if c.at >= 0 && c.n >= c.at {
		c.cancel()
	}
	return n, err
}

// TestUnpackReadError: a reader that fails (a network) is not the layer's
// fault, and its error comes back as it was.
func TestUnpackReadError(t *testing.T) {
	s := newSandbox(t)
	data := tarOf(t, reg("a", strings.Repeat("x", 10000)))
	errNet := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(data[:2000]), &failingReader{err: errNet})
	_, err := Unpack(context.Background(), r, s.layer, Limits{})
	if !errors.Is(err, errNet) || errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("unpack from a failing reader: %v, want its error and no InvalidArgument", err)
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestDecompress(t *testing.T) {
	data := tarOf(t, reg("a", strings.Repeat("compressible ", 1000)))
	gz := gzipOf(t, data)
	corrupt := slices.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, c := range []struct {
		name  string
		blob  []byte
		error string // "" for none
	}{
		{"plain", data, ""},
		{"gzip", gz, ""},
		{"corrupt gzip", corrupt, "gzip"},
		{"cut gzip", gz[:len(gz)/2], "gzip"},
		{"zstd", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, data...), "zstd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			r, err := Decompress(bytes.NewReader(c.blob))
			if err == nil {
				defer r.Close()
				_, err = Unpack(context.Background(), r, s.layer, Limits{})
				if err == nil {
					// A corruption after the end marker shows only in
					// the rest of the stream, which Store reads.
					_, err = io.Copy(io.Discard, r)
				}
			}
			if c.error == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkRefused(t, err, c.error)
		})
	}
}
