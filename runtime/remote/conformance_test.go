package remote_test

import (
	"path/filepath"
	"testing"

	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/fake"
	"github.com/troupe-run/troupe/runtime/runtimetest"
)

// TestConformance runs the runtime conformance suite through a client and
// a server, on the fake and on real containers.
func TestConformance(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		const bad = "/bundles/bad"
		var rt *fake.Runtime
		runtimetest.Run(t, runtimetest.Harness{
			New: func(t *testing.T) runtimetest.Env {
				rt = fake.New(fake.Options{BadBundles: []string{bad}})
				return runtimetest.Env{Runtime: serve(t, fakeEngine{Runtime: rt}), Bundle: bundlePath, BadBundle: bad}
			},
			// The fake's processes run nothing: the test makes them exit
			// on the engine's side.
			Exit: func(t *testing.T, c runtime.Container, p runtime.Process, code int) {
				t.Helper()
				if err := rt.Lookup(c.ID()).Exit(p.Pid(), code); err != nil {
					t.Fatal(err)
				}
			},
			OOMKill: func(t *testing.T, c runtime.Container, p runtime.Process) {
				t.Helper()
				if err := rt.Lookup(c.ID()).OOMKill(p.Pid()); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
	t.Run("linux", func(t *testing.T) {
		runtimetest.Run(t, runtimetest.Harness{
			New: func(t *testing.T) runtimetest.Env {
				e := shared.New(t, troupetest.Options{Name: "conformance"})
				return runtimetest.Env{
					Runtime:   serve(t, e.Runtime),
					Bundle:    e.Bundle(t, "conformance"),
					BadBundle: filepath.Join(e.Dir, "no-bundle"),
				}
			},
		})
	})
}
