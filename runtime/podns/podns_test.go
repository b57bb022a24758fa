package podns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// newManager returns a Manager of sandboxes under a directory of the
// test's; it removes them when the test ends.
func newManager(t *testing.T, apart bool) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes namespaces and mounts")
	}
	m := &Manager{Dir: filepath.Join(t.TempDir(), "sandboxes"), Apart: apart}
	t.Cleanup(func() {
		ids, _ := m.List()
		for _, id := range ids {
			if err := m.Remove(id); err != nil {
				t.Error(err)
			}
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// modes runs f with sandboxes mounted in the host's mount namespace, and
// apart.
func modes(t *testing.T, f func(t *testing.T, apart bool)) {
	for _, apart := range []bool{false, true} {
		t.Run(fmt.Sprint("Apart=", apart), func(t *testing.T) { f(t, apart) })
	}
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

func TestMakeGetRemove(t *testing.T) { modes(t, testMakeGetRemove) }

func testMakeGetRemove(t *testing.T, apart bool) {
	m := newManager(t, apart)
	sb, err := m.Make("pod-a", "web-0")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"net": sb.Network, "ipc": sb.IPC, "uts": sb.UTS} {
		if !strings.HasSuffix(filepath.Dir(p), filepath.Join(m.Dir, "pod-a")) {
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
func TestMakeAfterHalfMade(t *testing.T) { modes(t, testMakeAfterHalfMade) }

func testMakeAfterHalfMade(t *testing.T, apart bool) {
	m := newManager(t, apart)
	sb, err := m.Make("pod-b", "b")
	if err != nil {
		t.Fatal(err)
	}
	unmount := func() error { return unix.Unmount(sb.UTS, unix.MNT_DETACH) }
	if apart {
		s, err := m.spaceFor()
		if err != nil {
			t.Fatal(err)
		}
		uts := strings.TrimPrefix(sb.UTS, s.root)
		unmount = func() error { return s.run(func() error { return unix.Unmount(uts, unix.MNT_DETACH) }) }
	}
	if err := unmount(); err != nil {
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
func TestMakeLeavesTheCallerAlone(t *testing.T) { modes(t, testMakeLeavesTheCallerAlone) }

func testMakeLeavesTheCallerAlone(t *testing.T, apart bool) {
	m := newManager(t, apart)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	before := inode(t, "/proc/thread-self/ns/net")
	mnt := inode(t, "/proc/thread-self/ns/mnt")
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
	if inode(t, "/proc/thread-self/ns/mnt") != mnt || inode(t, "/proc/self/ns/mnt") != mnt {
		t.Error("Make moved the calling thread to another mount namespace")
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
			m := newManager(t, true)
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

// hostMounts lists the host's mount points under dir (and dir, were it
// one).
func hostMounts(t *testing.T, dir string) []string {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	var under []string
	for _, m := range mounts {
		under = append(under, m.Mountpoint)
	}
	return under
}

// TestApart: with Apart, the host's mount table gains one mount, the
// space's pin, however many sandboxes there are; another Manager (the
// agent restarted) finds them, and so does one for sandboxes made in the
// host's mount namespace. The space holds no mount the host made before
// it but those its files need.
func TestApart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes namespaces and mounts")
	}
	top := t.TempDir()
	// A tmpfs of the host's, there when the space is made (a pod's
	// volume, say): the space must not keep it.
	vol := filepath.Join(top, "volume")
	if err := os.Mkdir(vol, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", vol, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(vol, unix.MNT_DETACH) })

	dir := filepath.Join(top, "sandboxes")
	// Made as a Manager without Apart did: found and removed by one with.
	old := &Manager{Dir: dir}
	if _, err := old.Make("old", "o"); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Dir: dir, Apart: true}
	t.Cleanup(func() {
		ids, _ := m.List()
		for _, id := range ids {
			m.Remove(id)
		}
		m.Close()
	})
	var made []Sandbox
	for i := range 5 {
		sb, err := m.Make(fmt.Sprint("pod-", i), fmt.Sprint("h", i))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sb.Network, fmt.Sprintf("/proc/%d/task/", os.Getpid())) {
			t.Errorf("sandbox %d's network namespace at %s, not in the space", i, sb.Network)
		}
		if got := strings.TrimSpace(in(t, sb, "hostname")); got != fmt.Sprint("h", i) {
			t.Errorf("host name in sandbox %d = %q", i, got)
		}
		made = append(made, sb)
	}
	if got := hostMounts(t, top); len(got) != 5 || !slices.Contains(got, dir+".mnt") || !slices.Contains(got, vol) {
		// The old sandbox's three, the volume and the pin.
		t.Errorf("the host's mounts under the test's directory: %v; want the old sandbox's, the volume and %s.mnt", got, dir)
	}
	s, err := m.spaceFor()
	if err != nil {
		t.Fatal(err)
	}
	spaceMounts, err := os.ReadFile(filepath.Join(filepath.Dir(s.root), "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(spaceMounts), vol) {
		t.Errorf("the space keeps the host's tmpfs at %s:\n%s", vol, spaceMounts)
	}
	if n := strings.Count(string(spaceMounts), " - nsfs "); n != 15 {
		t.Errorf("the space holds %d namespace mounts, want 15:\n%s", n, spaceMounts)
	}
	if sb, ok, err := m.Get("old"); err != nil || !ok || strings.HasPrefix(sb.Network, "/proc/") {
		t.Errorf("Get of the old sandbox = %+v, %v, %v; want it in the host's mount namespace", sb, ok, err)
	}
	if err := m.Remove("old"); err != nil {
		t.Fatal(err)
	}

	// The agent restarts: its holder goes, the sandboxes stay.
	var inodes []uint64
	for _, sb := range made {
		inodes = append(inodes, inode(t, sb.Network))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	again := &Manager{Dir: dir, Apart: true}
	for i := range made {
		sb, ok, err := again.Get(fmt.Sprint("pod-", i))
		if err != nil || !ok {
			t.Fatalf("after a restart, Get of sandbox %d = %v, %v", i, ok, err)
		}
		if inode(t, sb.Network) != inodes[i] {
			t.Errorf("after a restart, sandbox %d is %+v (network namespace %d), was %+v (%d)", i, sb, inode(t, sb.Network), made[i], inodes[i])
		}
		if got := strings.TrimSpace(in(t, sb, "hostname")); got != fmt.Sprint("h", i) {
			t.Errorf("after a restart, host name in sandbox %d = %q", i, got)
		}
		if err := again.Remove(fmt.Sprint("pod-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hostMounts(t, top); len(got) != 1 || got[0] != vol {
		t.Errorf("the host's mounts under the test's directory after all went: %v; want only the volume", got)
	}
}
