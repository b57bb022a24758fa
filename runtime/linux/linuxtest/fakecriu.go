package linuxtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/runtime/procstat"
)

// Scripts of fake CRIUs that hang, for FakeCriu. DIR stands for the fake's
// directory and REAL for make criu's CRIU. Where a fake hangs, the pid of
// the hanging process goes to DIR/hung.pid. A hang lasts two minutes, far
// beyond any deadline of the tests, and ends by itself: CRIU runs as a
// child of the test binary or its daemon, outside any tracked cgroup, so
// the test guard would not find one a killed run left.
const (
	// SilentCriu tells its version (9.9.9) and hangs at anything else, in
	// a child of its own that also holds libcontainer's socket to CRIU.
	SilentCriu = `[ "$1" = --version ] && { echo 'Version: 9.9.9'; exit 0; }
sleep 120 & echo $! > DIR/hung.pid; wait
`
	// MidwayCriu is the real CRIU, stopped by an action script when it
	// works for libcontainer ("criu swrk"): a dump at the network lock,
	// once CRIU has frozen the container's cgroup and ptrace-seized its
	// tasks (where CRIU 4.1.1 hangs on kernel 6.18); a restore just before
	// it resumes the restored tasks. A plain `criu dump`, as in the
	// self-test, runs to the end.
	MidwayCriu = `case "$1" in swrk) export CRIU_CONFIG_FILE=DIR/hang.conf ;; esac
exec REAL "$@"
`
)

// FakeCriu writes a criu running script (SilentCriu, MidwayCriu) into a
// new directory and returns its path and that directory.
func FakeCriu(t testing.TB, script string) (path, dir string) {
	t.Helper()
	real, err := filepath.Abs(filepath.Join(CriuPrefix(), "bin", "criu"))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	r := strings.NewReplacer("DIR", dir, "REAL", real)
	files := map[string]string{
		"criu":      "#!/bin/sh\n" + r.Replace(script),
		"hang.conf": r.Replace("action-script DIR/hang.sh\n"),
		"hang.sh": r.Replace(`#!/bin/sh
case "$CRTOOLS_SCRIPT_ACTION" in network-lock|pre-resume) ;; *) exit 0 ;; esac
echo $$ > DIR/hung.pid
exec sleep 120
`),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "criu"), dir
}

// HungPid is the pid of the process in which the fake CRIU in dir hangs,
// or 0 while it has not got there.
func HungPid(dir string) int {
	data, _ := os.ReadFile(filepath.Join(dir, "hung.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// Gone says whether pid has exited (a zombie counts: its parent has yet to
// reap it).
func Gone(pid int) bool {
	st, err := procstat.Read(pid)
	return err != nil || st.Gone()
}
