package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestMain runs the tests under a guard: the daemons the end-to-end tests
// start, and their containers, go with the test binary however it ends.
func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(func() int {
		code := m.Run()
		// What the tests share outlives each of them: the daemons' token
		// and the binary tryDaemon runs.
		for _, p := range []string{tokenPath, binPath} {
			if p != "" {
				linuxtest.RemoveAll(filepath.Dir(p))
			}
		}
		return code
	}))
}
