package podns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func newManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes namespaces and mounts")
	}
	m := &Manager{Dir: t.TempDir()}
	t.Cleanup(func() {
		ids, _ := m.List()
		for _, id := range ids {
			if err := m.Remove(id); err != nil {
				t.Error(err)
			}
		}
	})
	return m
}

// inode is the inode of the namespace at path; ns files of one namespace
// share it.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// in runs a command in the sandbox's namespaces (nsenter, util-linux).
func in(t *testing.T, sb Sandbox, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + sb.Network, "--ipc=" + sb.IPC, "--uts=" + sb.UTS, "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in the sandbox: %v: %s", args, err, out)
	}
	return string(out)
}

func TestMakeGetRemove(t *testing.T) {
	m := newManager(t)
	sb, err := m.Make("pod-a", "web-0")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"net": sb.Network, "ipc": sb.IPC, "uts": sb.UTS} {
		if filepath.Dir(p) != filepath.Join(m.Dir, "pod-a") {
			t.Errorf("%s namespace at %s, not in the sandbox's directory", name, p)
		}
		if inode(t, p) == inode(t, "/proc/self/ns/"+name) {
			t.Errorf("the sandbox's %s namespace is the test's own", name)
		}
	}
	if got := strings.TrimSpace(in(t, sb, "hostname")); got != "web-0" {
		t.Errorf("host name in the sandbox = %q, want web-0", got)
	}
	if got := in(t, sb, "ip", "-o", "link", "show", "lo"); !strings.Contains(got, "UP") {
		t.Errorf("loopback in the sandbox is not up: %s", got)
	}
	if got := in(t, sb, "ip", "-o", "link", "show"); strings.Count(got, "\n") != 1 {
		t.Errorf("the sandbox's network namespace has more than lo: %s", got)
	}

	// Make again: the same namespaces.
	again, err := m.Make("pod-a", "other")
	if err != nil {
		t.Fatal(err)
	}
	if again != sb || inode(t, again.Network) != inode(t, sb.Network) {
		t.Errorf("Make of a whole sandbox made another: %+v, was %+v", again, sb)
	}
	if got, ok, err := m.Get("pod-a"); err != nil || !ok || got != sb {
		t.Errorf("Get = %+v, %v, %v; want %+v", got, ok, err, sb)
	}
	if ids, err := m.List(); err != nil || len(ids) != 1 || ids[0] != "pod-a" {
		t.Errorf("List = %v, %v", ids, err)
	}

	if err := m.Remove("pod-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "pod-a")); !os.IsNotExist(err) {
		t.Errorf("the sandbox's directory is left: %v", err)
	}
	if _, ok, err := m.Get("pod-a"); ok || err != nil {
		t.Errorf("Get after Remove = %v, %v", ok, err)
	}
	if err := m.Remove("pod-a"); err != nil {
		t.Errorf("Remove of a sandbox that is gone: %v", err)
	}
}

// TestMakeAfterHalfMade: a sandbox left half made (a file with no
// namespace on it) is made again.
func TestMakeAfterHalfMade(t *testing.T) {
	m := newManager(t)
	sb, err := m.Make("pod-b", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(sb.UTS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.Get("pod-b"); ok {
		t.Fatal("a sandbox without its UTS namespace counts as whole")
	}
	remade, err := m.Make("pod-b", "b2")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(in(t, remade, "hostname")); got != "b2" {
		t.Errorf("host name of the remade sandbox = %q, want b2", got)
	}
}

// TestMakeLeavesTheCallerAlone: the namespaces are entered by a thread
// of their own, never by one that runs other goroutines afterwards.
func TestMakeLeavesTheCallerAlone(t *testing.T) {
	m := newManager(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before := inode(t, "/proc/thread-self/ns/net")
	host, _ := os.Hostname()
	process := inode(t, "/proc/self/ns/net")
	for i := range 20 {
		if _, err := m.Make("pod-"+string(rune('a'+i)), "h"); err != nil {
			t.Fatal(err)
		}
	}
	if unix.Gettid() != tid || inode(t, "/proc/thread-self/ns/net") != before {
		t.Error("Make moved the calling thread")
	}
	if inode(t, "/proc/self/ns/net") != process {
		t.Error("the process (its main thread) is no longer in the host's network namespace")
	}
	if h, _ := os.Hostname(); h != host {
		t.Errorf("the process's host name became %q", h)
	}
}

func TestBadIDs(t *testing.T) {
	m := &Manager{Dir: t.TempDir()}
	for _, id := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := m.Make(id, "h"); err == nil {
			t.Errorf("Make(%q) made a sandbox", id)
		}
		if err := m.Remove(id); err == nil {
			t.Errorf("Remove(%q) = nil", id)
		}
	}
}

// TestNoIPv6: with NoIPv6, an interface that comes into the sandbox gets
// no IPv6, and its loopback keeps ::1; without it, the interface has IPv6.
func TestNoIPv6(t *testing.T) {
	for _, tc := range []struct {
		noIPv6 bool
		want   string
	}{{true, "1"}, {false, "0"}} {
		t.Run(fmt.Sprint("NoIPv6=", tc.noIPv6), func(t *testing.T) {
			m := newManager(t)
			m.NoIPv6 = tc.noIPv6
			sb, err := m.Make("pod", "h")
			if err != nil {
				t.Fatal(err)
			}
			in(t, sb, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
			if got := strings.TrimSpace(in(t, sb, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")); got != tc.want {
				t.Errorf("eth0's disable_ipv6 = %s, want %s", got, tc.want)
			}
			if got := in(t, sb, "ip", "-6", "addr", "show", "dev", "lo"); !strings.Contains(got, "::1/128") {
				t.Errorf("lo has no ::1: %q", got)
			}
		})
	}
}
