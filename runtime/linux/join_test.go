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

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
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
			c, err := e.rt.Start(context.Background(), id, runtime.StartOptions{
				BundlePath: e.bundle(id, busybox.Options{NoHostname: true}), Join: tc.join})
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
