// Package linuxtest holds what the tests of several packages need to start
// real containers with package linux: CRIU from make criu on the PATH, and
// skipping (or, under make test, failing) a test that needs CRIU when none
// is installed.
package linuxtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CriuPrefix is where make criu installs CRIU ($CRIU_PREFIX overrides it).
func CriuPrefix() string {
	if p := os.Getenv("CRIU_PREFIX"); p != "" {
		return p
	}
	return "/opt/troupe/criu"
}

// UseCriu puts make criu's CRIU first on this process's PATH, where
// libcontainer looks for criu. Call it from TestMain.
func UseCriu() {
	os.Setenv("PATH", filepath.Join(CriuPrefix(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// RequireCriu skips a test that needs CRIU when none is installed, unless
// TROUPE_REQUIRE_CRIU is set (make test sets it, after make criu): there a
// missing CRIU is a failure, not a skip.
func RequireCriu(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("criu"); err == nil {
		return
	}
	if os.Getenv("TROUPE_REQUIRE_CRIU") != "" {
		t.Fatal("no criu on PATH or in " + CriuPrefix() + ": run make criu")
	}
	t.Skip("no criu on PATH or in " + CriuPrefix() + " (make criu installs one)")
}
