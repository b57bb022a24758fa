package image_test

import (
	"context"
	"errors"
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
// unpacked layer, fails with ENOSPC (507 over the API), leaves the store as
// it was, and the store works on once there is room.
func TestPullOnFullDisk(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs")
	}
	reg := registrytest.Start(t, registrytest.Config{})
	small := reg.Host() + "/small:1"
	registrytest.Push(t, small, v1.Config{Cmd: []string{"true"}}, registrytest.Tar(t, map[string]string{"hello": "hi\n"}))
	tests := []struct {
		name  string
		layer []byte
	}{
		// 2 MiB that gzip cannot shrink: the blob itself does not fit.
		{"blob", randomFile(t, 2<<20)},
		// 4 MiB of zeros, a few KiB compressed: the unpacked file does not.
		{"unpacked", registrytest.Tar(t, map[string]string{"zeros": strings.Repeat("\x00", 4<<20)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := unix.Mount("troupe-nospace", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
			storeDir := filepath.Join(dir, "images")
			s, err := image.Open(storeDir, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			before := storeFiles(t, storeDir)
			ref := reg.Host() + "/big-" + tt.name + ":1"
			registrytest.Push(t, ref, v1.Config{Cmd: []string{"true"}}, tt.layer)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			if _, err := s.Pull(ctx, ref, nil); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("pull onto a full disk: %v, want ENOSPC", err)
			}
			sameFiles(t, storeDir, before)
			// The space is free again: a small image pulls.
			if _, err := s.Pull(ctx, small, nil); err != nil {
				t.Errorf("a small pull after the failed one: %v", err)
			}
		})
	}
}
