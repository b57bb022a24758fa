package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestJoinPath: a start joins namespaces by the paths of their files, alone
// or beside a container's, with no actor asked for a path; its view names
// the paths as the start gave them, also in the next supervisor that adopts
// it (a daemon restart), and it cannot be checkpointed. What is not a
// namespace file of the type named is refused, and leaves no container.
func TestJoinPath(t *testing.T) {
	e := newRealEnv(t, Config{})
	ctx := testContext(t)
	pinned := linuxtest.PinNamespaces(t, "pinned")
	b := e.env.BundleWith(t, "plain", busybox.Options{Args: []string{"sleep", "300"}, NoHostname: true})
	sandbox, err := e.sup.Start(ctx, "sandbox", b)
	if err != nil {
		t.Fatal(err)
	}
	spid := sandbox.Container.Processes[0].Pid

	for _, tc := range []struct {
		name, id string
		join     map[runtime.Namespace]string
		want     api.Join
		// files are the namespace files, by /proc/PID/ns name, that the
		// joiner's namespaces must be.
		files map[string]string
		// refusal is what the refusal of a checkpoint names: the first
		// join, by namespace.
		refusal string
	}{
		{"all by path", "app-paths", map[runtime.Namespace]string{
			runtime.NetworkNamespace: pinned.Network, runtime.IPCNamespace: pinned.IPC, runtime.UTSNamespace: pinned.UTS},
			api.Join{Network: pinned.Network, IPC: pinned.IPC, UTS: pinned.UTS},
			map[string]string{"net": pinned.Network, "ipc": pinned.IPC, "uts": pinned.UTS}, pinned.IPC},
		{"network by path, ipc of a container", "app-mixed", map[runtime.Namespace]string{
			runtime.NetworkNamespace: pinned.Network, runtime.IPCNamespace: "sandbox"},
			api.Join{Network: pinned.Network, IPC: "sandbox"},
			map[string]string{"net": pinned.Network, "ipc": fmt.Sprintf("/proc/%d/ns/ipc", spid)}, `container "sandbox"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			res, err := e.sup.StartContainer(ctx, StartContainer{ID: id, BundlePath: b, Join: tc.join})
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			t.Cleanup(func() {
				if err := e.sup.Delete(ctx, id, true); err != nil {
					t.Errorf("delete: %v", err)
				}
			})
			if c := res.Container; c.Join == nil || *c.Join != tc.want {
				t.Errorf("the start's view says it joined %+v, want %+v", c.Join, tc.want)
			}
			pid := res.Container.Processes[0].Pid
			for ns, file := range tc.files {
				if !linuxtest.SameNamespace(t, fmt.Sprintf("/proc/%d/ns/%s", pid, ns), file) {
					t.Errorf("%s namespace is not %s's", ns, file)
				}
			}
			// A daemon that restarts finds the paths in the runtime's
			// record.
			next, err := Spawn(e.system.Root, Config{Runtime: e.rt, Name: "next-" + id, Adopt: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer next.Stop()
			if c, ok := next.State().Get(id); !ok || c.Join == nil || *c.Join != tc.want {
				t.Errorf("adopted, its view says it joined %+v (listed %v), want %+v", c.Join, ok, tc.want)
			}
			_, err = e.sup.Checkpoint(ctx, id, "cp", runtime.CheckpointOptions{})
			if !errors.Is(err, errclass.FailedPrecondition) || !strings.Contains(err.Error(), tc.refusal) {
				t.Errorf("checkpoint: %v, want failed precondition naming %s", err, tc.refusal)
			}
		})
	}

	regular := filepath.Join(t.TempDir(), "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	named := e.env.BundleWith(t, "named", busybox.Options{Args: []string{"sleep", "300"}})
	for _, tc := range []struct {
		name   string
		bundle string
		join   map[runtime.Namespace]string
		want   error
	}{
		{"relative", b, map[runtime.Namespace]string{runtime.NetworkNamespace: "run/netns/x"}, errclass.InvalidArgument},
		{"not clean", b, map[runtime.Namespace]string{runtime.NetworkNamespace: "/run//netns/x"}, errclass.InvalidArgument},
		{"missing", b, map[runtime.Namespace]string{runtime.NetworkNamespace: regular + "-nosuch"}, errclass.NotFound},
		{"a regular file", b, map[runtime.Namespace]string{runtime.IPCNamespace: regular}, errclass.InvalidArgument},
		{"another type", b, map[runtime.Namespace]string{runtime.NetworkNamespace: pinned.IPC}, errclass.InvalidArgument},
		{"hostname in a joined UTS", named, map[runtime.Namespace]string{runtime.UTSNamespace: pinned.UTS}, errclass.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.sup.StartContainer(ctx, StartContainer{ID: "refused", BundlePath: tc.bundle, Join: tc.join})
			if !errors.Is(err, tc.want) {
				if err == nil {
					_ = e.sup.Delete(ctx, "refused", true)
				}
				t.Fatalf("start: %v %+v, want %v", err, res, tc.want)
			}
			if _, err := e.sup.Get(ctx, "refused"); !errors.Is(err, errclass.NotFound) {
				t.Errorf("after a refused start: %v, want not found", err)
			}
		})
	}
}
