package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/troupe-run/troupe/errclass"
)

// FuzzUnpack feeds arbitrary streams to Unpack: whatever it makes of them,
// nothing appears or changes outside the layer directory, and a refusal is
// the input's (InvalidArgument). go test runs the seeds below as a unit
// test; go test -fuzz FuzzUnpack explores from them.
func FuzzUnpack(f *testing.F) {
	for _, seed := range [][]ent{
		{dir("etc/"), reg("etc/passwd", "root"), symlink("bin", "usr/bin"), hardlink("etc/p2", "etc/passwd")},
		{symlink("evil", "../outside"), reg("evil/pwned", "x")},
		{symlink("evil", "/"), dir("evil/tmp/")},
		{symlink("evil", "../../.."), symlink("evil/x", "y")},
		{reg("../escape", "x"), reg("/abs", "y")},
		{hardlink("h", "../outside/secret")},
		{symlink("s", "../outside/secret"), hardlink("h", "s"), reg("h", "overwrite")},
		{reg(".wh.a", ""), dir("a/"), reg("a/.wh..wh..opq", ""), reg("b/.wh.c", "")},
		{fifo("p"), reg("p", "x"), dir("p/"), symlink("p", "q")},
		{reg("x", "").with(func(h *tar.Header) {
			h.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.trusted.overlay.opaque": "y"}
		})},
	} {
		f.Add(tarOf(f, seed...))
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Add([]byte("not a tar stream at all"))

	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, outside)
		limits := Limits{MaxBytes: 1 << 20, MaxEntries: 1000, MaxDepth: 32}
		_, err := Unpack(context.Background(), bytes.NewReader(data), filepath.Join(base, "layer"), limits)
		if err != nil && !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("unpack: %v, not InvalidArgument", err)
		}
		if got := names(t, base); len(got) != 2 || got[0] != "layer" || got[1] != "outside" {
			t.Errorf("beside the layer: %q", got)
		}
		after := snapshot(t, outside)
		for p, desc := range after {
			if before[p] != desc {
				t.Errorf("outside/%s changed: %q", p, desc)
			}
		}
		if len(after) != len(before) {
			t.Errorf("outside holds %d entries, had %d", len(after), len(before))
		}
	})
}
