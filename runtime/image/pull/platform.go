package pull

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/errclass"
)

// Platform is an OS, an architecture and, where it matters (32-bit arm),
// a variant, as in an image index.
type Platform struct {
	OS, Architecture, Variant string
}

// String returns os/arch or os/arch/variant.
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform returns the platform this binary runs on. For 32-bit arm the
// variant comes from the GOARM it was built for (v6, v7): an image of a
// later variant would not run.
func HostPlatform() Platform {
	p := Platform{OS: goruntime.GOOS, Architecture: goruntime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					p.Variant = "v" + s.Value[:1]
				}
			}
		}
	}
	return p
}

// normalVariant makes equal the variants that indexes write either way:
// arm64 images say "v8" or nothing.
func normalVariant(arch, variant string) string {
	if arch == "arm64" && variant == "v8" {
		return ""
	}
	return variant
}

// matches reports whether an index entry's platform is want. A want
// without a variant takes any variant of its OS and architecture (amd64's
// "v2", "v3" entries are preferred less, see choose).
func (want Platform) matches(p *v1.Platform) bool {
	if p == nil || p.OS != want.OS || p.Architecture != want.Architecture {
		return false
	}
	return want.Variant == "" || normalVariant(p.Architecture, p.Variant) == normalVariant(want.Architecture, want.Variant)
}

// choose picks the image manifest for want from an index: the first entry
// that matches, one without a variant before one with (an amd64/v3 image
// may need instructions this machine lacks). Entries that are not image
// manifests (nested indexes, attestations without a platform) are passed
// over. Without a match the error lists what the index has.
func choose(idx *v1.IndexManifest, want Platform, what string) (v1.Descriptor, error) {
	var found *v1.Descriptor
	var has []string
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		pl := Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}
		has = append(has, pl.String())
		if want.matches(d.Platform) && (found == nil || (found.Platform.Variant != "" && d.Platform.Variant == "")) {
			found = d
		}
	}
	if found == nil {
		list := "nothing"
		if len(has) > 0 {
			list = strings.Join(has, ", ")
		}
		return v1.Descriptor{}, errclass.With(errclass.NotFound, fmt.Errorf("no %s image in index %s (has: %s)", want, what, list))
	}
	return *found, nil
}
