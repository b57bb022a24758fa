package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// This test binary is also the init of the containers it starts.
	linux.Init()
	os.Exit(linuxtest.Guarded(m.Run))
}

// entries counts what is in dir (0 if it is not there).
func entries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestStore pulls two images that share their busybox layer from a real
// registry, mounts the roots of many containers from one, runs one, and
// removes them: one unpacked copy of each layer serves them all, and
// removing the images leaves nothing behind.
func TestStore(t *testing.T) {
	linuxtest.RequireRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	dir, err := os.MkdirTemp("", "image-store-")
	if err != nil {
		t.Fatal(err)
	}
	// Containers reach their roots through it, as root in their own
	// namespaces.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := linuxtest.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	rootfs, err := busybox.Rootfs(filepath.Join(dir, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	base := registrytest.TarDir(t, rootfs)
	top := registrytest.TarDir(t, func() string {
		d := filepath.Join(dir, "top", "etc")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "motd"), []byte("hello from the top layer\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return filepath.Dir(d)
	}())
	registrytest.Push(t, reg.Host()+"/base:1", v1.Config{Cmd: []string{"sh"}}, base)
	registrytest.Push(t, reg.Host()+"/app:1", v1.Config{Cmd: []string{"sh", "-c", "cat /etc/motd; echo FROM_IMAGE=$FROM_IMAGE"},
		Env: []string{"FROM_IMAGE=yes"}}, base, top)

	s, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app, err := s.Pull(ctx, reg.Host()+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, reg.Host()+"/base:1", nil); err != nil {
		t.Fatal(err)
	}
	layers := filepath.Join(dir, "images", "layers", "sha256")
	if n := entries(t, layers); n != 2 {
		t.Errorf("%d layers unpacked for two images sharing one of their two: want 2", n)
	}
	if got, err := s.Get(reg.Host() + "/app:1"); err != nil || got.Digest != app.Digest {
		t.Errorf("Get by name: %v, %v", got.Digest, err)
	}
	if got, err := s.Get(app.Digest); err != nil || len(got.Names) != 1 {
		t.Errorf("Get by digest: %+v, %v", got, err)
	}
	if _, err := s.Get(reg.Host() + "/other:1"); !errors.Is(err, errclass.NotFound) {
		t.Errorf("Get of an image never pulled: %v", err)
	}
	// A reference by digest finds the image in a repository it came
	// from, as docker's does, though it was pulled by tag.
	for _, tc := range []struct {
		ref   string
		found bool
	}{
		{reg.Host() + "/app@" + app.Digest, true},
		{reg.Host() + "/other@" + app.Digest, false},
		{reg.Host() + "/app@sha256:" + strings.Repeat("0", 64), false},
	} {
		got, err := s.Get(tc.ref)
		if tc.found && (err != nil || got.Digest != app.Digest) {
			t.Errorf("Get(%s) = %s, %v; want %s", tc.ref, got.Digest, err, app.Digest)
		}
		if !tc.found && !errors.Is(err, errclass.NotFound) {
			t.Errorf("Get(%s) = %s, %v; want NotFound", tc.ref, got.Digest, err)
		}
	}
	if ref, err := image.DigestReference(reg.Host()+"/app:1", app.Digest); err != nil || ref != reg.Host()+"/app@"+app.Digest {
		t.Errorf("DigestReference = %q, %v", ref, err)
	}
	// The store outlives its process.
	if s, err = image.Open(filepath.Join(dir, "images"), image.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.List()); n != 2 {
		t.Errorf("%d images after reopening, want 2", n)
	}

	// Many containers, one copy of the layers: each root is an overlay
	// with an upper directory of its own, and the disk holds the layers
	// once whatever the number of containers.
	imagesDir := filepath.Join(dir, "images")
	before := testutil.DiskUsage(t, imagesDir)
	const n = 100
	for i := range n {
		id := fmt.Sprintf("c%02d", i)
		root, err := s.Mount(ctx, id, app)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Unmount(id) })
		if b, err := os.ReadFile(filepath.Join(root, "etc", "motd")); err != nil || !strings.HasPrefix(string(b), "hello") {
			t.Fatalf("%s: /etc/motd: %q, %v", id, b, err)
		}
	}
	if got := entries(t, layers); got != 2 {
		t.Errorf("%d layers unpacked with %d containers: want still 2", got, n)
	}
	// Each container adds its directories (a few KiB), not a copy of the
	// image (2 MiB of busybox here).
	after := testutil.DiskUsage(t, imagesDir)
	t.Logf("disk used by the store: %d KiB with the image, %d KiB with %d containers on it", before>>10, after>>10, n)
	if grown := after - before; grown > n*64<<10 {
		t.Errorf("%d containers grew the store by %d KiB: more than 64 KiB each", n, grown>>10)
	}

	// Run one: the spec from the image's configuration, the root from
	// the store.
	out := runFromImage(t, dir, s, app, "c00")
	if want := "hello from the top layer\nFROM_IMAGE=yes\n"; out != want {
		t.Errorf("the container printed %q, want %q", out, want)
	}

	if got := s.Users(app.Digest); got != n {
		t.Errorf("Users = %d, want %d", got, n)
	}
	// The books of what is mounted outlive the process too.
	if s, err = image.Open(filepath.Join(dir, "images"), image.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := s.Users(app.Digest); got != n {
		t.Errorf("Users after reopening = %d, want %d", got, n)
	}
	if _, err := s.Remove(app.Digest, false); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("Remove of an image in use: %v", err)
	}
	for i := range n {
		if err := s.Unmount(fmt.Sprintf("c%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := s.Mounted(); err != nil || len(ids) != 0 {
		t.Errorf("Mounted after unmounting all: %v, %v", ids, err)
	}
	if _, err := s.Remove(reg.Host()+"/app:1", false); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, layers); n != 1 {
		t.Errorf("%d layers after removing app, want base's 1", n)
	}
	if _, err := s.Remove(reg.Host()+"/base:1", false); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, layers); n != 0 {
		t.Errorf("%d layers after removing both images", n)
	}
	if n := entries(t, filepath.Join(dir, "images", "content", "blobs", "sha256")); n != 0 {
		t.Errorf("%d blobs after removing both images", n)
	}
}

// runFromImage starts container id from img on a root the store mounts,
// waits for it and returns what it printed.
func runFromImage(t *testing.T, dir string, s *image.Store, img image.Image, id string) string {
	t.Helper()
	parent := "/troupe-test-" + filepath.Base(dir)
	linuxtest.TrackCgroup(parent)
	rt, err := linux.New(linux.Options{StateDir: filepath.Join(dir, "state"), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		linuxtest.RemoveCgroup(parent)
	})
	cfg, err := s.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := imagespec.Generate(id, s.RootPath(id), cfg, imagespec.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "bundles", id)
	if err := bundle.Write(b, spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rt.Start(ctx, id, runtime.StartOptions{BundlePath: b})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	defer func() {
		if err := c.Delete(ctx, true); err != nil {
			t.Errorf("delete %s: %v", id, err)
		}
	}()
	if _, err := c.Init().Wait(ctx); err != nil {
		t.Fatalf("%s: the init did not exit: %v", id, err)
	}
	return linuxtest.Output(t, c.LogPath())
}
