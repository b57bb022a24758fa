package daemontest

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// PushBusybox starts a registry of t's own on loopback (Debian's
// docker-registry), pushes a busybox image to it and returns the image's
// reference; both go when t ends.
func PushBusybox(t testing.TB) string {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Config{})
	dir, rootfs, err := linuxtest.SharedRootfs("troupe-kubelet-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { linuxtest.RemoveAll(dir) })
	image := reg.Host() + "/busybox:1"
	registrytest.Push(t, image, v1.Config{Cmd: []string{"sh"}}, registrytest.TarDir(t, rootfs))
	return image
}
