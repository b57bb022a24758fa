package linux

import (
	"path/filepath"
	"testing"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/runtimetest"
)

// TestConformance runs the runtime conformance suite on real containers.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T) runtimetest.Env {
			e := newEnv(t)
			return runtimetest.Env{
				Runtime:   e.rt,
				Bundle:    e.bundle("conformance", busybox.Options{}),
				BadBundle: filepath.Join(e.dir, "no-bundle"),
			}
		},
	})
}
