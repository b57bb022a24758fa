package linux

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/bundle"
)

// specCacheSize bounds the bundles whose configuration is kept.
const specCacheSize = 64

// specCache keeps, per bundle, its loaded spec and libcontainer
// configuration, so that starting a bundle seen before reads, validates and
// converts nothing: containers of one bundle share one configuration but
// for their cgroups (configFor). An entry holds while the bundle's
// config.json is the same file with the same size and times.
//
// Sharing is safe because libcontainer replaces a container's configuration
// rather than changing it, with one exception — restore appends a time
// namespace — which the clipped slices make copy.
type specCache struct {
	mu      sync.Mutex
	entries map[string]*specEntry // by clean bundle path
}

type specEntry struct {
	stamp  bundleStamp
	bundle *bundle.Bundle
	base   *configs.Config
}

func newSpecCache() *specCache { return &specCache{entries: make(map[string]*specEntry)} }

// load returns the bundle at bundlePath and its configuration, converted by
// convert when the bundle is new or changed. Neither may be modified.
func (c *specCache) load(bundlePath string, convert func(*bundle.Bundle) (*configs.Config, error)) (*bundle.Bundle, *configs.Config, error) {
	if !filepath.IsAbs(bundlePath) {
		_, err := bundle.Load(bundlePath) // says why
		return nil, nil, err
	}
	clean := filepath.Clean(bundlePath)
	// Taken before the read: a config.json that changes meanwhile gets
	// another stamp next time and is read again.
	stamp, stampErr := stampOf(clean)
	if stampErr == nil {
		c.mu.Lock()
		e := c.entries[clean]
		c.mu.Unlock()
		// The rootfs is checked again, as bundle.Load would.
		if e != nil && e.stamp == stamp {
			if fi, err := os.Stat(e.bundle.Spec.Root.Path); err == nil && fi.IsDir() {
				return e.bundle, e.base, nil
			}
		}
	}
	b, err := bundle.Load(clean)
	if err != nil {
		return nil, nil, err
	}
	base, err := convert(b)
	if err != nil {
		return nil, nil, err
	}
	clipSlices(base)
	if stampErr == nil {
		c.mu.Lock()
		if len(c.entries) >= specCacheSize {
			for k := range c.entries { // any one: a cache this size rarely fills
				delete(c.entries, k)
				break
			}
		}
		c.entries[clean] = &specEntry{stamp: stamp, bundle: b, base: base}
		c.mu.Unlock()
	}
	return b, base, nil
}

// clipSlices makes every append to a shared configuration's slices copy.
func clipSlices(c *configs.Config) {
	c.Mounts = slices.Clip(c.Mounts)
	c.Devices = slices.Clip(c.Devices)
	c.Namespaces = slices.Clip(c.Namespaces)
	c.Networks = slices.Clip(c.Networks)
	c.Routes = slices.Clip(c.Routes)
	c.Rlimits = slices.Clip(c.Rlimits)
	c.UIDMappings = slices.Clip(c.UIDMappings)
	c.GIDMappings = slices.Clip(c.GIDMappings)
	c.Labels = slices.Clip(c.Labels)
	c.MaskPaths = slices.Clip(c.MaskPaths)
	c.ReadonlyPaths = slices.Clip(c.ReadonlyPaths)
	if c.Cgroups != nil && c.Cgroups.Resources != nil {
		c.Cgroups.Resources.Devices = slices.Clip(c.Cgroups.Resources.Devices)
	}
}

// configFor is the configuration of container id from its bundle's shared
// one: the same but for its own cgroups, <parent>/<id>.
func (r *Runtime) configFor(id string, base *configs.Config) *configs.Config {
	cfg := *base
	cg := *base.Cgroups
	if base.Cgroups.Resources != nil {
		res := *base.Cgroups.Resources
		cg.Resources = &res
	}
	cg.Path = path.Join(r.cgroupParent, id)
	cfg.Cgroups = &cg
	return &cfg
}

// bundleStamp identifies one version of a bundle's config.json.
type bundleStamp struct {
	dev, ino uint64
	size     int64
	mtime    syscall.Timespec
	ctime    syscall.Timespec
}

func stampOf(bundlePath string) (bundleStamp, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(bundlePath, bundle.ConfigFile), &st); err != nil {
		return bundleStamp{}, fmt.Errorf("bundle %s: %w: %w", bundlePath, err, errclass.InvalidArgument)
	}
	return bundleStamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}
