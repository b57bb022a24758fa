package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDaemonConfig(t *testing.T) {
	got := daemonConfig("/tmp/w")
	for _, want := range []string{
		"version = 2\n",
		`root = "/tmp/w/root"`,
		`state = "/tmp/w/state"`,
		`disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
		"[grpc]\n  address = \"/tmp/w/containerd.sock\"",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}

func TestCtrArgv(t *testing.T) {
	c := newContainerd()
	c.ctr, c.dir = "/usr/bin/ctr", "/tmp/w"
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"run", c.runArgv("c1", "/tmp/w/bundles/c1/config.json"),
			"/usr/bin/ctr --address /tmp/w/containerd.sock --namespace troupe-bench --connect-timeout 2m0s " +
				"run --detach --null-io --runc-root /tmp/w/runc --config /tmp/w/bundles/c1/config.json c1"},
		{"version", c.ctrArgv("version"),
			"/usr/bin/ctr --address /tmp/w/containerd.sock --namespace troupe-bench --connect-timeout 2m0s version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.got, " "); got != tc.want {
				t.Errorf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestIsShimOf(t *testing.T) {
	const addr = "/tmp/w/containerd.sock"
	cmdline := func(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }
	for _, tc := range []struct {
		name    string
		cmdline []byte
		want    bool
	}{
		{"our shim", cmdline("/usr/bin/containerd-shim-runc-v2", "-namespace", "troupe-bench", "-id", "c1", "-address", addr), true},
		{"shim by name", cmdline("containerd-shim-runc-v2", "-namespace", "n", "-id", "c1", "-address", addr), true},
		{"another daemon's shim", cmdline("/usr/bin/containerd-shim-runc-v2", "-namespace", "n", "-id", "c1", "-address", "/run/containerd/containerd.sock"), false},
		{"a prefix of our address", cmdline("/usr/bin/containerd-shim-runc-v2", "-address", addr+".x"), false},
		{"the daemon", cmdline("/usr/bin/containerd", "--config", "/tmp/w/config.toml"), false},
		{"not a shim naming the address", cmdline("/bin/sh", "-address", addr), false},
		{"address last without value", cmdline("containerd-shim-runc-v2", "-address"), false},
		{"empty (a zombie)", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isShimOf(tc.cmdline, addr); got != tc.want {
				t.Errorf("isShimOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShimPids(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, cmdline string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("30", "/usr/bin/containerd-shim-runc-v2\x00-namespace\x00troupe-bench\x00-id\x00b\x00-address\x00/w/c.sock\x00")
	write("7", "/usr/bin/containerd-shim-runc-v2\x00-namespace\x00troupe-bench\x00-id\x00a\x00-address\x00/w/c.sock\x00")
	write("8", "/usr/bin/containerd-shim-runc-v2\x00-namespace\x00x\x00-id\x00a\x00-address\x00/other.sock\x00")
	write("9", "sleep\x003600\x00")
	if err := os.Mkdir(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := shimPids(proc, "/w/c.sock")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{7, 30}) {
		t.Errorf("shimPids = %v, want [7 30]", got)
	}
}

func TestContainerdStartsAndTearsDown(t *testing.T) {
	_, err := os.Stat(containerdShared)
	sharedBefore := err == nil
	testCompareTarget(t, "containerd", "containerd", "containerd", func(t *testing.T, pids, inits []int) {
		t.Helper()
		// The daemon and one shim per container, each the parent of its
		// container's init.
		if len(pids) != 1+len(inits) {
			t.Fatalf("OverheadPids = %v, want the daemon and %d shims", pids, len(inits))
		}
		shims := pids[1:]
		for _, init := range inits {
			if !slices.Contains(shims, parentPid(t, init)) {
				t.Errorf("init %d has parent %d, not one of the shims %v", init, parentPid(t, init), shims)
			}
		}
		for _, pid := range pids {
			if _, err := readRollup(pid); err != nil {
				t.Errorf("memory of overhead pid %d: %v", pid, err)
			}
		}
	})
	if _, err := os.Stat(containerdShared); !sharedBefore && err == nil {
		t.Errorf("%s was made by the run and is still there", containerdShared)
	}
}

// parentPid reads the parent of pid from /proc.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	var state string
	var ppid int
	fmt.Sscan(rest, &state, &ppid)
	return ppid
}
