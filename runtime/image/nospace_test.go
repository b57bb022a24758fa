package image_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
)

// TestPullOnFullDisk: a pull that runs out of disk, in the blob or in the
// unpacked layer, fails with ENOSPC (507 over the API), leaves no file
// behind, and the store works on once there is room.
func TestPullOnFullDisk(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs")
	}
	reg := registrytest.Start(t, registrytest.Config{})
	random := make([]byte, 2<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	small := reg.Host() + "/small:1"
	registrytest.Push(t, small, v1.Config{Cmd: []string{"true"}}, registrytest.Tar(t, map[string]string{"hello": "hi\n"}))
	tests := []struct {
		name  string
		layer map[string]string
	}{
		// 2 MiB that gzip cannot shrink: the blob itself does not fit.
		{"blob", map[string]string{"noise": string(random)}},
		// 4 MiB of zeros, a few KiB compressed: the unpacked file does not.
		{"unpacked", map[string]string{"zeros": strings.Repeat("\x00", 4<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := unix.Mount("troupe-nospace", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
			s, err := image.Open(filepath.Join(dir, "images"), image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ref := reg.Host() + "/big-" + tt.name + ":1"
			registrytest.Push(t, ref, v1.Config{Cmd: []string{"true"}}, registrytest.Tar(t, tt.layer))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			_, err = s.Pull(ctx, ref, nil)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("pull onto a full disk: %v, want ENOSPC", err)
			}
			if got := len(s.List()); got != 0 {
				t.Errorf("%d images after the failed pull", got)
			}
			if files := regularFiles(t, dir); len(files) != 0 {
				t.Errorf("files left by the failed pull: %v", files)
			}
			// The space is free again: a small image pulls.
			if _, err := s.Pull(ctx, small, nil); err != nil {
				t.Errorf("a small pull after the failed one: %v", err)
			}
		})
	}
}

// regularFiles lists the regular files under dir but the store's books.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != "images.json" {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
