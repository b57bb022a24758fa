package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// registryBinary is Debian's docker-registry (distribution 2.8), which
// make deps installs.
const registryBinary = "/usr/bin/docker-registry"

// startRegistry runs a plain-HTTP registry on c.Registry (loopback: troupe
// pulls from loopback registries over plain HTTP without being told), its
// storage in the state directory.
func startRegistry(ctx context.Context, c config) (*child, error) {
	// A port taken by another program would have the registry exit, with
	// a log to read first: say so at once.
	l, err := net.Listen("tcp", c.Registry)
	if err != nil {
		return nil, fmt.Errorf("the registry's address %s is taken (choose another: --registry, or KUBE_UP_REGISTRY of make kube-up): %w", c.Registry, err)
	}
	l.Close()
	dir := c.path("registry")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), c.Registry)), 0o600); err != nil {
		return nil, err
	}
	r, err := startChild(c, "registry", registryBinary, "serve", conf)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{}
	return r, r.waitUp(ctx, registryUp, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Registry+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
}

// pushBusybox pushes c.image(): one layer holding the host's static
// busybox and a link per applet, its command sh.
func pushBusybox(ctx context.Context, c config) error {
	rootfs, err := busybox.Rootfs(c.path("tmp/busybox"))
	if err != nil {
		return err
	}
	defer linuxtest.RemoveAll(rootfs)
	layer, err := registrytest.TarTree(rootfs)
	if err != nil {
		return fmt.Errorf("busybox layer: %w", err)
	}
	return registrytest.PushImage(ctx, c.image(), authn.Anonymous, v1.Config{Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, layer)
}
