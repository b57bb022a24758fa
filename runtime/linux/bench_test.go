package linux

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// BenchmarkSpecConversion is the part of a start that troupe does before
// libcontainer: reading and validating the bundle, and converting its OCI
// spec into libcontainer's configuration. It runs once per start, so it
// must stay small next to the start itself (tens of milliseconds). The
// sub-benchmarks split it: "load" is bundle.Load (read config.json, decode,
// validate), "config" the conversion alone, "load+config" a start's share.
//
//	go test -tags seccomp -run '^$' -bench SpecConversion ./runtime/linux/
func BenchmarkSpecConversion(b *testing.B) {
	dir := b.TempDir()
	path, err := busybox.Bundle(filepath.Join(dir, "bundle"), busybox.Options{Rootfs: filepath.Join(testDir, "rootfs")})
	if err != nil {
		b.Fatal(err)
	}
	// The runtime only converts here; nothing is created under its state
	// dir or in any cgroup.
	r, err := New(Options{StateDir: filepath.Join(dir, "state"), CgroupParent: "/troupe-bench"})
	if err != nil {
		b.Fatal(err)
	}
	loaded, err := bundle.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bundle.Load(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("config", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := r.config(fmt.Sprintf("c%d", i), loaded); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("load+config", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			bl, err := bundle.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.config(fmt.Sprintf("c%d", i), bl); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
