package linuxtest

import (
	"errors"
	"testing"

	"github.com/troupe-run/troupe/runtime/podns"
	"golang.org/x/sys/unix"
)

// PinNamespaces makes new network, IPC and UTS namespaces that no process
// is in, the UTS one with host name hostname, each bind-mounted onto a file
// of a t.TempDir() (a pod's sandbox, package podns), for a start to join by
// path. t's cleanup unmounts them (the kernel frees a namespace once
// nothing holds it); what a test binary that died left mounted there, the
// guard unmounts with the run's directory.
func PinNamespaces(t testing.TB, hostname string) podns.Sandbox {
	t.Helper()
	m := &podns.Manager{Dir: t.TempDir()}
	// Registered after t.TempDir's removal, so run before it: a mount
	// left there would fail the removal.
	t.Cleanup(func() {
		if err := m.Remove("pinned"); err != nil {
			t.Error(err)
		}
	})
	sb, err := m.Make("pinned", hostname)
	if err != nil {
		t.Fatalf("pin namespaces: %v", err)
	}
	return sb
}

// RemoveSandboxes removes every sandbox of m and closes it (with Apart,
// its mount namespace is unpinned once none is left); a failure fails t.
// For a test's cleanup: a sandbox left mounted under a t.TempDir() would
// fail its removal.
func RemoveSandboxes(t testing.TB, m *podns.Manager) {
	t.Helper()
	ids, err := m.List()
	for _, id := range ids {
		err = errors.Join(err, m.Remove(id))
	}
	if err := errors.Join(err, m.Close()); err != nil {
		t.Errorf("remove sandboxes: %v", err)
	}
}

// SameNamespace reports whether the namespace links or files a and b lead
// to the same namespace (device and inode).
func SameNamespace(t testing.TB, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		t.Fatalf("stat %s: %v", a, err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		t.Fatalf("stat %s: %v", b, err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
