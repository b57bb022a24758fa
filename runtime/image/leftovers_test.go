package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/pull"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// storeFiles lists what is in the store at dir, as paths below it: every
// file and directory of the books, the content store (blobs and
// unfinished ingests) and the layer store (unpacked layers and its tmp/),
// but not what is inside a layer.
func storeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		if d.IsDir() && strings.Count(rel, "/") == 2 && strings.HasPrefix(rel, "layers/") {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFiles fails t unless the store holds what it held before.
func sameFiles(t *testing.T, dir string, before []string) {
	t.Helper()
	after := storeFiles(t, dir)
	if !slices.Equal(before, after) {
		var added, gone []string
		for _, p := range after {
			if !slices.Contains(before, p) {
				added = append(added, p)
			}
		}
		for _, p := range before {
			if !slices.Contains(after, p) {
				gone = append(gone, p)
			}
		}
		t.Errorf("the store changed: left behind %v, lost %v", added, gone)
	}
}

// randomFile is a layer holding one file of n random bytes: gzip cannot
// shrink it, so its blob is as large as asked.
func randomFile(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return registrytest.Tar(t, map[string]string{"random": string(b)})
}

// flip overwrites a file with as many other bytes.
func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// layerDigest is the digest of the blob registrytest.Push makes of tb.
func layerDigest(t *testing.T, tb []byte) string {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pushWrongDiffID pushes an image of layers whose config names another
// diffID for the last one: every blob is what the manifest says, and only
// unpacking the last layer finds it is not what the config promised.
func pushWrongDiffID(t *testing.T, ref string, layers ...[]byte) {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	wrong, _, err := v1.SHA256(strings.NewReader("not this layer"))
	if err != nil {
		t.Fatal(err)
	}
	cf.RootFS.DiffIDs[len(cf.RootFS.DiffIDs)-1] = wrong
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// TestFailedPullLeavesNothing: a pull that fails half-way, whatever
// stopped it, leaves the store as it found it: no blob it had fetched, no
// layer it had unpacked, no temporary file, and nothing of the image it
// shares layers with gone.
func TestFailedPullLeavesNothing(t *testing.T) {
	linuxtest.RequireRoot(t)
	shared := registrytest.Tar(t, map[string]string{"etc/shared": "in both images\n"})
	own := registrytest.Tar(t, map[string]string{"etc/own": "only in the second\n"})
	big := randomFile(t, 32<<20)
	tests := []struct {
		name string
		// push pushes the image to pull as ref.
		push func(t *testing.T, reg *registrytest.Registry, ref string)
		// progress, if set, acts on the pull's progress reports.
		progress func(reg *registrytest.Registry, cancel context.CancelFunc) func(pull.Progress)
		// want is the error's class.
		want error
	}{
		{"the registry dies mid-blob", func(t *testing.T, _ *registrytest.Registry, ref string) {
			registrytest.Push(t, ref, v1.Config{}, shared, own, big)
		}, func(reg *registrytest.Registry, _ context.CancelFunc) func(pull.Progress) {
			return midBlob(reg.Stop)
		}, errclass.Unavailable},
		{"the context is cancelled mid-blob", func(t *testing.T, _ *registrytest.Registry, ref string) {
			registrytest.Push(t, ref, v1.Config{}, shared, own, big)
		}, func(_ *registrytest.Registry, cancel context.CancelFunc) func(pull.Progress) {
			return midBlob(cancel)
		}, context.Canceled},
		{"a blob is not its digest", func(t *testing.T, reg *registrytest.Registry, ref string) {
			registrytest.Push(t, ref, v1.Config{}, shared, own)
			flip(t, reg.BlobPath(layerDigest(t, own)))
		}, nil, errclass.InvalidArgument},
		{"a layer is not its diffID", func(t *testing.T, _ *registrytest.Registry, ref string) {
			// own is unpacked before the last layer fails.
			pushWrongDiffID(t, ref, shared, own, registrytest.Tar(t, map[string]string{"etc/last": "last\n"}))
		}, nil, errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Config{})
			registrytest.Push(t, reg.Host()+"/base:1", v1.Config{}, shared)
			tc.push(t, reg, reg.Host()+"/app:1")
			dir := filepath.Join(t.TempDir(), "images")
			s, err := image.Open(dir, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			base, err := s.Pull(ctx, reg.Host()+"/base:1", nil)
			if err != nil {
				t.Fatal(err)
			}
			before := storeFiles(t, dir)
			var progress func(pull.Progress)
			if tc.progress != nil {
				progress = tc.progress(reg, cancel)
			}
			_, err = s.Pull(ctx, reg.Host()+"/app:1", progress)
			if !errors.Is(err, tc.want) {
				t.Fatalf("the pull: %v; want %v", err, tc.want)
			}
			t.Logf("the pull failed as it should: %v", err)
			sameFiles(t, dir, before)
			if imgs := s.List(); len(imgs) != 1 || imgs[0].Digest != base.Digest {
				t.Errorf("the store's images: %+v; want only base", imgs)
			}
		})
	}
}

// midBlob is a progress function that calls stop once, at the first report
// of a layer of which some bytes came but not all.
func midBlob(stop func()) func(pull.Progress) {
	var once sync.Once
	return func(p pull.Progress) {
		if p.Done > 0 && p.Done < p.Total {
			once.Do(stop)
		}
	}
}

// TestFailedImportLeavesNothing: an archive that turns out bad half-way
// leaves no blob of it, no layer and no temporary file in the store.
func TestFailedImportLeavesNothing(t *testing.T) {
	linuxtest.RequireRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	shared := registrytest.Tar(t, map[string]string{"etc/shared": "in both images\n"})
	own := registrytest.Tar(t, map[string]string{"etc/own": "only in app\n"})
	registrytest.Push(t, reg.Host()+"/base:1", v1.Config{}, shared)
	registrytest.Push(t, reg.Host()+"/app:1", v1.Config{}, shared, own)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from, err := image.Open(filepath.Join(t.TempDir(), "from"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := from.Pull(ctx, reg.Host()+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	if err := from.Export(ctx, reg.Host()+"/app:1", &good); err != nil {
		t.Fatal(err)
	}
	ownBlob := "blobs/sha256/" + strings.TrimPrefix(layerDigest(t, own), "sha256:")
	// rewrite copies the good archive through edit, which may change an
	// entry's body or drop it (nil), and adds extra at the end.
	rewrite := func(t *testing.T, edit func(h *tar.Header, body []byte) []byte, extra ...string) []byte {
		t.Helper()
		var out bytes.Buffer
		tr, tw := tar.NewReader(bytes.NewReader(good.Bytes())), tar.NewWriter(&out)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if body = edit(h, body); body == nil {
				continue
			}
			h.Size = int64(len(body))
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
		for _, name := range extra {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg})
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	keep := func(_ *tar.Header, body []byte) []byte { return body }
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		want    error
	}{
		{"cut in the middle of its last blob", func(t *testing.T) []byte {
			// The last blob's data, padded to 512 bytes, then the
			// archive's end: two blocks of zeros.
			size := int(app.Layers[1].Size)
			start := good.Len() - 1024 - (size+511)/512*512
			return good.Bytes()[:start+size/2]
		}, errclass.InvalidArgument},
		{"a blob that is not its digest", func(t *testing.T) []byte {
			return rewrite(t, func(h *tar.Header, body []byte) []byte {
				if h.Name == ownBlob {
					return append(slices.Clone(body[:len(body)-1]), body[len(body)-1]^0xff)
				}
				return body
			})
		}, errclass.InvalidArgument},
		{"a layer it lacks", func(t *testing.T) []byte {
			return rewrite(t, func(h *tar.Header, body []byte) []byte {
				if h.Name == ownBlob {
					return nil
				}
				return body
			})
		}, errclass.NotFound},
		{"a file at the end that is no part of a layout", func(t *testing.T) []byte {
			return rewrite(t, keep, "evil")
		}, errclass.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			s, err := image.Open(dir, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Pull(ctx, reg.Host()+"/base:1", nil); err != nil {
				t.Fatal(err)
			}
			before := storeFiles(t, dir)
			_, err = s.Import(ctx, bytes.NewReader(tc.archive(t)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("the import: %v; want %v", err, tc.want)
			}
			t.Logf("the import failed as it should: %v", err)
			sameFiles(t, dir, before)
		})
	}
}

// TestRemoveDuringPull: an image removed while a pull of another that
// shares a layer with it is under way goes with what only it used, but
// the shared layer (blob and unpacked directory) stays for the pull, which
// then succeeds without unpacking it again.
func TestRemoveDuringPull(t *testing.T) {
	linuxtest.RequireRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	shared := registrytest.Tar(t, map[string]string{"etc/shared": "in both images\n"})
	own := registrytest.Tar(t, map[string]string{"etc/own": "only in app\n"})
	registrytest.Push(t, reg.Host()+"/base:1", v1.Config{}, shared)
	registrytest.Push(t, reg.Host()+"/app:1", v1.Config{}, shared, own)
	dir := filepath.Join(t.TempDir(), "images")
	s, err := image.Open(dir, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, err := s.Pull(ctx, reg.Host()+"/base:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sharedBlob := base.Layers[0].Digest
	sharedDir := filepath.Join(dir, "layers", "sha256", strings.TrimPrefix(base.Layers[0].DiffID, "sha256:"))
	before, err := os.Stat(sharedDir)
	if err != nil {
		t.Fatal(err)
	}

	// The pull stops at the report of the shared layer, which it found in
	// the store: it holds that layer now, and has not recorded its image.
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	pulled := make(chan error, 1)
	go func() {
		_, err := s.Pull(ctx, reg.Host()+"/app:1", func(p pull.Progress) {
			if p.Digest == sharedBlob {
				once.Do(func() {
					close(reached)
					select {
					case <-release:
					case <-ctx.Done():
					}
				})
			}
		})
		pulled <- err
	}()
	select {
	case <-reached:
	case err := <-pulled:
		t.Fatalf("the pull ended before it reached the shared layer: %v", err)
	case <-ctx.Done():
		t.Fatal("the pull did not reach the shared layer within a minute")
	}
	if _, err := s.Remove(reg.Host()+"/base:1", false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base.Digest, base.Config} {
		if _, err := os.Stat(filepath.Join(dir, "content", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("blob %s, used by the removed image only, is still there: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "content", "blobs", "sha256", strings.TrimPrefix(sharedBlob, "sha256:"))); err != nil {
		t.Errorf("the shared layer's blob went with the removed image while the pull needs it: %v", err)
	}
	if fi, err := os.Stat(sharedDir); err != nil || !os.SameFile(fi, before) {
		t.Errorf("the shared layer's directory went with the removed image while the pull needs it: %v", err)
	}
	close(release)
	if err := <-pulled; err != nil {
		t.Fatalf("the pull: %v", err)
	}
	if fi, err := os.Stat(sharedDir); err != nil || !os.SameFile(fi, before) {
		t.Errorf("the shared layer was unpacked again: %v", err)
	}
	if _, err := s.Remove(reg.Host()+"/app:1", false); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"content/blobs/sha256", "content/ingest", "layers/sha256", "layers/tmp"} {
		if n := entries(t, filepath.Join(dir, sub)); n != 0 {
			t.Errorf("%d entries in %s with no image left", n, sub)
		}
	}
}
