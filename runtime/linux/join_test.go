package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/system"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// nsLinks are what a process's namespace links read, by type, from an exec
// in c (readlink gives "net:[inode]").
func (e *env) nsLinks(c runtime.Container) map[string]string {
	e.t.Helper()
	links := make(map[string]string)
	for _, ns := range []string{"net", "ipc", "uts", "pid", "mnt"} {
		st, out := e.exec(c, "readlink", "/proc/self/ns/"+ns)
		if st.Code != 0 {
			e.t.Fatalf("readlink %s: %v: %s", ns, st, out)
		}
		links[ns] = strings.TrimSpace(out)
	}
	return links
}

func joinAll(c runtime.Container) []runtime.Join {
	pid := c.Init().Pid()
	return []runtime.Join{
		{Namespace: runtime.NetworkNamespace, Container: c.ID(), Pid: pid},
		{Namespace: runtime.IPCNamespace, Container: c.ID(), Pid: pid},
		{Namespace: runtime.UTSNamespace, Container: c.ID(), Pid: pid},
	}
}

// TestJoin starts containers in a sandbox's namespaces: they share its
// network, IPC and UTS namespaces (and its host name) but keep their own
// pid and mount namespaces.
func TestJoin(t *testing.T) {
	e := newEnv(t)
	sandbox := e.start("sandbox", busybox.Options{})
	want := e.nsLinks(sandbox)
	for _, tc := range []struct {
		name   string
		join   []runtime.Join
		shared []string
	}{
		{"all", joinAll(sandbox), []string{"net", "ipc", "uts"}},
		{"network only", joinAll(sandbox)[:1], []string{"net"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "joiner-" + strings.ReplaceAll(tc.name, " ", "-")
			c := e.startJoiner(t, id, tc.join)
			got := e.nsLinks(c)
			for ns := range want {
				shared := slices.Contains(tc.shared, ns)
				if (got[ns] == want[ns]) != shared {
					t.Errorf("%s namespace: joiner %s, sandbox %s; want shared %v", ns, got[ns], want[ns], shared)
				}
			}
			if _, out := e.exec(c, "hostname"); slices.Contains(tc.shared, "uts") && strings.TrimSpace(out) != "busybox" {
				t.Errorf("hostname in the joined UTS namespace: %q, want the sandbox's, busybox", out)
			}
		})
	}
}

// TestJoinRefused: what cannot be joined is refused before anything is made.
func TestJoinRefused(t *testing.T) {
	e := newEnv(t)
	sandbox := e.start("sandbox", busybox.Options{})
	stopped := e.start("stopped", busybox.Options{Args: []string{"true"}})
	wait(t, stopped.Init())
	plain := e.bundle("plain", busybox.Options{NoHostname: true})
	named := e.bundle("named", busybox.Options{})
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	userns := e.bundle("userns", busybox.Options{NoHostname: true, UIDMappings: m, GIDMappings: m})
	pid := sandbox.Init().Pid()
	// A bundle that names a network namespace of its own.
	ownNet := e.bundle("ownnet", busybox.Options{NoHostname: true})
	cfgPath := filepath.Join(ownNet, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg specs.Spec
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for i, ns := range cfg.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			cfg.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
	}
	if data, err = json.Marshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bundle string
		join   []runtime.Join
		want   error
	}{
		{"unknown container", plain, []runtime.Join{{Namespace: runtime.NetworkNamespace, Container: "nosuch", Pid: pid}}, errclass.NotFound},
		{"another pid", plain, []runtime.Join{{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid + 1}}, errclass.FailedPrecondition},
		{"stopped", plain, []runtime.Join{{Namespace: runtime.NetworkNamespace, Container: "stopped", Pid: stopped.Init().Pid()}}, errclass.FailedPrecondition},
		{"itself", plain, []runtime.Join{{Namespace: runtime.NetworkNamespace, Container: "joiner", Pid: pid}}, errclass.InvalidArgument},
		{"hostname in a joined UTS", named, []runtime.Join{{Namespace: runtime.UTSNamespace, Container: "sandbox", Pid: pid}}, errclass.InvalidArgument},
		{"own user namespace", userns, []runtime.Join{{Namespace: runtime.IPCNamespace, Container: "sandbox", Pid: pid}}, errclass.InvalidArgument},
		{"a namespace path of its own", ownNet, []runtime.Join{{Namespace: runtime.NetworkNamespace, Container: "sandbox", Pid: pid}}, errclass.InvalidArgument},
		{"pid namespace", plain, []runtime.Join{{Namespace: "pid", Container: "sandbox", Pid: pid}}, errclass.InvalidArgument},
		{"twice", plain, []runtime.Join{
			{Namespace: runtime.IPCNamespace, Container: "sandbox", Pid: pid},
			{Namespace: runtime.IPCNamespace, Container: "sandbox", Pid: pid}}, errclass.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := runtime.StartOptions{BundlePath: tc.bundle, Join: tc.join}
			if err := e.rt.Check(context.Background(), "joiner", opts); tc.want == errclass.InvalidArgument && !errors.Is(err, tc.want) {
				t.Errorf("check: %v, want %v", err, tc.want)
			}
			c, err := e.rt.Start(context.Background(), "joiner", opts)
			if !errors.Is(err, tc.want) {
				if c != nil {
					_ = c.Delete(context.Background(), true)
				}
				t.Fatalf("start: %v, want %v", err, tc.want)
			}
			e.assertGone("joiner", "")
		})
	}
}

// TestJoinOutlivesSandbox: the kernel keeps a namespace while a process is
// in it, so a joiner keeps its network when the sandbox is deleted.
func TestJoinOutlivesSandbox(t *testing.T) {
	e := newEnv(t)
	sandbox := e.start("sandbox", busybox.Options{})
	c, err := e.rt.Start(context.Background(), "joiner", runtime.StartOptions{
		BundlePath: e.bundle("joiner", busybox.Options{NoHostname: true}), Join: joinAll(sandbox)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = c.Delete(ctx, true)
	})
	before := e.nsLinks(c)
	// A daemon that starts later finds what it joined in its record.
	l, err := e.rt.Load(context.Background(), "joiner")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Joined(); !slices.Equal(got, joinAll(sandbox)) {
		t.Errorf("loaded joiner joined %+v, want %+v", got, joinAll(sandbox))
	}
	// A restore could not join them again.
	if err := c.Checkpoint(context.Background(), t.TempDir(), runtime.CheckpointOptions{}); !errors.Is(err, errclass.FailedPrecondition) {
		t.Errorf("checkpoint of a joiner: %v, want failed precondition", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sandbox.Delete(ctx, true); err != nil {
		t.Fatalf("delete the sandbox: %v", err)
	}
	if st, _ := c.Status(); st != runtime.Running {
		t.Fatalf("joiner is %s after the sandbox went", st)
	}
	if after := e.nsLinks(c); after["net"] != before["net"] || after["uts"] != before["uts"] {
		t.Errorf("namespaces changed: before %v, after %v", before, after)
	}
	if st, out := e.exec(c, "ip", "link", "show", "lo"); st.Code != 0 || !strings.Contains(out, "UP") {
		t.Errorf("loopback in the kept network namespace: %v: %s", st, out)
	}
	// A new joiner of the deleted sandbox is refused.
	_, err = e.rt.Start(context.Background(), "late", runtime.StartOptions{
		BundlePath: e.bundle("late", busybox.Options{NoHostname: true}), Join: joinAll(sandbox)[:1]})
	if !errors.Is(err, errclass.NotFound) {
		t.Errorf("joining a deleted sandbox: %v, want not found", err)
	}
}

// TestJoinedInitAlive: the check that tells a joined init from a later
// process of the same pid goes by the process's start time.
func TestJoinedInitAlive(t *testing.T) {
	self, err := system.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		pid       int
		startTime uint64
		want      error
	}{
		{"the same process", os.Getpid(), self.StartTime, nil},
		{"a later process of the pid", os.Getpid(), self.StartTime - 1, errclass.FailedPrecondition},
		{"no such process", 1 << 22, self.StartTime, errclass.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ji := joinedInit{join: runtime.Join{Namespace: runtime.NetworkNamespace, Container: "c", Pid: tc.pid}, startTime: tc.startTime}
			if err := ji.alive(); !errors.Is(err, tc.want) {
				t.Errorf("alive: %v, want %v", err, tc.want)
			}
		})
	}
}

// nsID is the device and inode of the namespace that path (a namespace
// file, or a /proc/PID/ns link) leads to: what tells namespaces apart.
func nsID(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestJoinPath starts containers in namespaces that files hold with no
// process in them (as a pod manager pins a pod's), alone or beside a
// container's: each joiner is in the namespace of the file it named, has
// that UTS namespace's host name, and its record keeps the paths.
func TestJoinPath(t *testing.T) {
	e := newEnv(t)
	pinned := linuxtest.PinNamespaces(t, "pinned")
	sandbox := e.start("sandbox", busybox.Options{})
	spid := sandbox.Init().Pid()
	for _, tc := range []struct {
		name     string
		join     []runtime.Join
		want     map[string]string // namespace → the file whose namespace the joiner is in
		hostname string
	}{
		{"network", []runtime.Join{{Namespace: runtime.NetworkNamespace, Path: pinned.Network}},
			map[string]string{"net": pinned.Network}, ""},
		{"all", []runtime.Join{
			{Namespace: runtime.NetworkNamespace, Path: pinned.Network},
			{Namespace: runtime.IPCNamespace, Path: pinned.IPC},
			{Namespace: runtime.UTSNamespace, Path: pinned.UTS}},
			map[string]string{"net": pinned.Network, "ipc": pinned.IPC, "uts": pinned.UTS}, "pinned"},
		{"mixed with a container", []runtime.Join{
			{Namespace: runtime.NetworkNamespace, Path: pinned.Network},
			{Namespace: runtime.IPCNamespace, Container: "sandbox", Pid: spid}},
			map[string]string{"net": pinned.Network, "ipc": fmt.Sprintf("/proc/%d/ns/ipc", spid)}, ""},
		{"a proc link", []runtime.Join{{Namespace: runtime.UTSNamespace, Path: fmt.Sprintf("/proc/%d/ns/uts", spid)}},
			map[string]string{"uts": fmt.Sprintf("/proc/%d/ns/uts", spid)}, "busybox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "joiner-" + strings.ReplaceAll(tc.name, " ", "-")
			c := e.startJoiner(t, id, tc.join)
			pid := c.Init().Pid()
			for ns, file := range tc.want {
				if got, want := nsID(t, fmt.Sprintf("/proc/%d/ns/%s", pid, ns)), nsID(t, file); got != want {
					t.Errorf("%s namespace %s, want %s's, %s", ns, got, file, want)
				}
			}
			if _, ok := tc.want["net"]; !ok && nsID(t, fmt.Sprintf("/proc/%d/ns/net", pid)) == nsID(t, pinned.Network) {
				t.Errorf("in the pinned network namespace without joining it")
			}
			if tc.hostname != "" {
				if _, out := e.exec(c, "hostname"); strings.TrimSpace(out) != tc.hostname {
					t.Errorf("hostname %q, want the joined UTS namespace's, %q", out, tc.hostname)
				}
			}
			// A daemon that starts later finds the paths in its record.
			l, err := e.rt.Load(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Joined(); !slices.Equal(got, tc.join) || !slices.Equal(c.Joined(), tc.join) {
				t.Errorf("joined %+v, loaded %+v; want %+v", c.Joined(), got, tc.join)
			}
			// A restore could not join them again.
			err = c.Checkpoint(context.Background(), t.TempDir(), runtime.CheckpointOptions{})
			if !errors.Is(err, errclass.FailedPrecondition) || !strings.Contains(err.Error(), tc.join[0].Where()) {
				t.Errorf("checkpoint: %v, want failed precondition naming %s", err, tc.join[0].Where())
			}
		})
	}
}

// TestJoinPathRefused: a path that is not a namespace file of the type
// named is refused, saying what it is, before anything is made; so is what
// a bundle would do to a namespace it joins by path.
func TestJoinPathRefused(t *testing.T) {
	e := newEnv(t)
	pinned := linuxtest.PinNamespaces(t, "pinned")
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	plain := e.bundle("plain", busybox.Options{NoHostname: true})
	named := e.bundle("named", busybox.Options{})
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	userns := e.bundle("userns", busybox.Options{NoHostname: true, UIDMappings: m, GIDMappings: m})
	net := func(p string) []runtime.Join { return []runtime.Join{{Namespace: runtime.NetworkNamespace, Path: p}} }
	for _, tc := range []struct {
		name   string
		bundle string
		join   []runtime.Join
		want   error
		says   string // what the message must say
		check  bool   // Check refuses it too: nothing need be read
	}{
		{"relative", plain, net("run/netns/x"), errclass.InvalidArgument, "absolute", true},
		{"not clean", plain, net(pinned.Network + "/../net"), errclass.InvalidArgument, "clean", true},
		{"missing", plain, net(filepath.Join(dir, "nosuch")), errclass.NotFound, "no such file", false},
		{"under a regular file", plain, net(filepath.Join(regular, "net")), errclass.NotFound, "no such file", false},
		{"a regular file", plain, net(regular), errclass.InvalidArgument, "a regular file, not a namespace file", false},
		{"a directory", plain, net(dir), errclass.InvalidArgument, "a directory", false},
		{"a device", plain, net("/dev/null"), errclass.InvalidArgument, "a character device", false},
		{"ipc as network", plain, net("/proc/self/ns/ipc"), errclass.InvalidArgument, "type ipc, not net", false},
		{"network as UTS", plain, []runtime.Join{{Namespace: runtime.UTSNamespace, Path: pinned.Network}},
			errclass.InvalidArgument, "type net, not uts", false},
		{"hostname in a joined UTS", named, []runtime.Join{{Namespace: runtime.UTSNamespace, Path: pinned.UTS}},
			errclass.InvalidArgument, pinned.UTS, true},
		{"own user namespace", userns, []runtime.Join{{Namespace: runtime.IPCNamespace, Path: pinned.IPC}},
			errclass.InvalidArgument, "user namespace", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := runtime.StartOptions{BundlePath: tc.bundle, Join: tc.join}
			if err := e.rt.Check(context.Background(), "joiner", opts); tc.check && !errors.Is(err, tc.want) {
				t.Errorf("check: %v, want %v", err, tc.want)
			}
			c, err := e.rt.Start(context.Background(), "joiner", opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				if c != nil {
					_ = c.Delete(context.Background(), true)
				}
				t.Fatalf("start: %v, want %v saying %q", err, tc.want, tc.says)
			}
			e.assertGone("joiner", "")
		})
	}
}

// startJoiner starts container id of a plain bundle joining joins, and
// deletes it at t's end.
func (e *env) startJoiner(t *testing.T, id string, joins []runtime.Join) runtime.Container {
	t.Helper()
	c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{
		BundlePath: e.bundle(id, busybox.Options{NoHostname: true}), Join: joins})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	return c
}
