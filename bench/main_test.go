package bench

import (
	"os"
	"testing"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestMain runs the tests under a guard: the containers, daemons and mounts
// the comparison tests make (with crun, runc or containerd installed) go
// with the test binary however it ends.
func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}
