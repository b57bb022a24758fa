package troupetest

import (
	"os"
	"slices"
	"testing"

	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

var shared = NewShared("troupe-troupetest-test-")

func TestMain(m *testing.M) {
	linux.Init()
	os.Exit(linuxtest.Guarded(func() int {
		code := m.Run()
		shared.Remove()
		return code
	}))
}

// TestEnvCleanup checks what an Env leaves when its test ends: the layers
// stopped, last first, and its directory gone.
func TestEnvCleanup(t *testing.T) {
	var stopped []string
	var dir string
	t.Run("env", func(t *testing.T) {
		e := shared.New(t, Options{Name: "troupetest"})
		dir = e.Dir
		if e.Runtime == nil || e.CgroupParent == "" {
			t.Fatalf("env %+v", e)
		}
		if _, err := os.Stat(e.Bundle(t, "b", "true")); err != nil {
			t.Fatal(err)
		}
		e.ActorSystem()
		e.OnStop(func() { stopped = append(stopped, "first") })
		e.OnStop(func() { stopped = append(stopped, "second") })
	})
	if dir == "" {
		t.Skip("no env made")
	}
	if want := []string{"second", "first"}; !slices.Equal(stopped, want) {
		t.Errorf("layers stopped %v, want %v", stopped, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the env's directory is still there (%v)", err)
	}
}
