package main

import (
	"os"
	"testing"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestMain runs the tests under a guard: the daemons the end-to-end tests
// start, and their containers, go with the test binary however it ends.
func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}
