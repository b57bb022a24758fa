package fake

import (
	"testing"

	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/runtimetest"
)

// TestConformance runs the runtime conformance suite on the fake, which
// claims to behave as package linux does.
func TestConformance(t *testing.T) {
	const bad = "/bundles/bad"
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T) runtimetest.Env {
			return runtimetest.Env{
				Runtime:   New(Options{BadBundles: []string{bad}}),
				Bundle:    bundlePath,
				BadBundle: bad,
			}
		},
		// The fake's processes run nothing: make them exit as told.
		Exit: func(t *testing.T, c runtime.Container, p runtime.Process, code int) {
			t.Helper()
			if err := c.(*Container).Exit(p.Pid(), code); err != nil {
				t.Fatal(err)
			}
		},
		OOMKill: func(t *testing.T, c runtime.Container, p runtime.Process) {
			t.Helper()
			if err := c.(*Container).OOMKill(p.Pid()); err != nil {
				t.Fatal(err)
			}
		},
	})
}
