package http

import (
	"fmt"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// probe is a joiner's init: it prints its host name and what the sandbox's
// loopback server answers, then stays.
var probe = []string{"sh", "-c", "hostname; echo hi | nc -w 5 127.0.0.1 7000; exec sleep 300"}

// nsOf reads the namespace link ("net:[inode]") of a host pid.
func nsOf(t *testing.T, pid int, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return l
}

// TestJoin: a pod. A sandbox container serves on its loopback; containers
// started from a bundle and from an image join its network, IPC and UTS
// namespaces: they reach its server on 127.0.0.1, have its host name, and
// keep their own pid namespaces.
func TestJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/busybox:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sleep", "300"}}, registrytest.TarDir(t, e.rig.Rootfs))
	if a := e.pull(fmt.Sprintf(`{"reference": %q}`, ref)); a.status != nethttp.StatusOK || a.last().Image == nil {
		t.Fatalf("pull: %d %s", a.status, a.err.body)
	}

	sandbox := e.startContainer("sandbox", e.bundle("sandbox", "nc", "-ll", "-p", "7000", "-e", "echo", "pong"))
	spid := sandbox.Processes[0].Pid
	if sandbox.Join != nil {
		t.Errorf("the sandbox's view says it joined %+v", sandbox.Join)
	}
	app := e.rig.BundleWith(t, "app", busybox.Options{Args: probe, NoHostname: true})
	named := e.bundle("named", "sleep", "300") // its config.json names the host
	all := `"join": {"network": "sandbox", "ipc": "sandbox", "uts": "sandbox"}`
	probeJSON := `["sh", "-c", "hostname; echo hi | nc -w 5 127.0.0.1 7000; exec sleep 300"]`

	for _, tc := range []struct {
		name, id, body string
	}{
		{"bundle", "app", fmt.Sprintf(`{"bundlePath": %q, %s}`, app, all)},
		{"image", "img", fmt.Sprintf(`{"image": %q, "args": %s, %s}`, ref, probeJSON, all)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			var c api.Container
			decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/"+tc.id, tc.body), &c)
			t.Cleanup(func() { e.do("DELETE", "/containers/"+tc.id+"?force=true", "") })
			if want := (api.Join{Network: "sandbox", IPC: "sandbox", UTS: "sandbox"}); c.Join == nil || *c.Join != want {
				t.Errorf("the joiner's view says it joined %+v, want %+v", c.Join, want)
			}
			if got := e.get(tc.id); got.Join == nil || *got.Join != *c.Join {
				t.Errorf("GET says it joined %+v", got.Join)
			}
			pid := c.Processes[0].Pid
			for _, ns := range []string{"net", "ipc", "uts"} {
				if got, want := nsOf(t, pid, ns), nsOf(t, spid, ns); got != want {
					t.Errorf("%s namespace %s, the sandbox's %s", ns, got, want)
				}
			}
			if got, sandbox := nsOf(t, pid, "pid"), nsOf(t, spid, "pid"); got == sandbox {
				t.Errorf("pid namespace %s is the sandbox's", got)
			}
			var log string
			testutil.Eventually(t, "the joiner's probe to be answered", func() bool {
				log = string(e.do("GET", "/containers/"+tc.id+"/logs", "").body)
				return strings.Contains(log, "pong")
			})
			if !strings.HasPrefix(log, "busybox\n") {
				t.Errorf("the joiner wrote %q, want the sandbox's host name, busybox, first", log)
			}
		})
	}

	e.startContainer("stopped", e.bundle("stopped", "true"))
	testutil.Eventually(t, "the container that exits to stop", func() bool { return e.get("stopped").State.Status == api.Stopped })
	e.run(t, []request{
		{"unknown container", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"network": "nosuch"}}`, app), 404, []string{"nosuch"}},
		{"stopped container", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"ipc": "stopped"}}`, app), 409, []string{"stopped", "not running"}},
		{"itself", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"network": "j1"}}`, app), 400, []string{"its own"}},
		{"bad id", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"network": "../x"}}`, app), 400, []string{"container id"}},
		{"pid namespace", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"pid": "sandbox"}}`, app), 400, []string{"unknown field", "pid"}},
		{"restore", "POST", "/containers/j1", `{"checkpoint": "c1", "join": {"network": "sandbox"}}`, 400, []string{"restore", "joins none"}},
		{"bundle's hostname", "POST", "/containers/j1", fmt.Sprintf(`{"bundlePath": %q, "join": {"uts": "sandbox"}}`, named), 400, []string{"hostname", "UTS"}},
		{"image's hostname", "POST", "/containers/j1", fmt.Sprintf(`{"image": %q, "hostname": "h", "join": {"uts": "sandbox"}}`, ref), 400, []string{"hostname", "UTS"}},
	})
	want(t, "GET j1", e.do("GET", "/containers/j1", ""), 404)

	t.Run("warm pool", func(t *testing.T) {
		// The pool's containers have namespaces of their own: a start
		// that joins goes cold, and still joins.
		e := e.sub(t)
		e.mustStatus(nethttp.StatusCreated, "PUT", "/pools/apps", fmt.Sprintf(`{"bundlePath": %q, "size": 1}`, app))
		t.Cleanup(func() { e.do("DELETE", "/pools/apps", "") })
		testutil.Eventually(t, "the pool to fill", func() bool {
			var p api.Pool
			decodeBody(t, e.do("GET", "/pools/apps", ""), &p)
			return p.Ready == 1
		})
		var c api.Container
		decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/cold", fmt.Sprintf(`{"bundlePath": %q, %s}`, app, all)), &c)
		t.Cleanup(func() { e.do("DELETE", "/containers/cold?force=true", "") })
		if c.Warm {
			t.Errorf("a start that joins claimed a warm container")
		}
		if got, want := nsOf(t, c.Processes[0].Pid, "net"), nsOf(t, spid, "net"); got != want {
			t.Errorf("network namespace %s, the sandbox's %s", got, want)
		}
		// A container claimed from the pool can be joined: its state
		// keeps the prepared container's name, its id is a link to it.
		var warm api.Container
		decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/warmbox", fmt.Sprintf(`{"bundlePath": %q}`, app)), &warm)
		t.Cleanup(func() { e.do("DELETE", "/containers/warmbox?force=true", "") })
		if !warm.Warm {
			t.Fatalf("the pool's bundle started cold")
		}
		decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/warmjoiner",
			fmt.Sprintf(`{"bundlePath": %q, "join": {"network": "warmbox"}}`, app)), &c)
		t.Cleanup(func() { e.do("DELETE", "/containers/warmjoiner?force=true", "") })
		if got, want := nsOf(t, c.Processes[0].Pid, "net"), nsOf(t, warm.Processes[0].Pid, "net"); got != want {
			t.Errorf("network namespace %s, the warm container's %s", got, want)
		}
	})

	t.Run("paused sandbox", func(t *testing.T) {
		// Its init lives, frozen: its namespaces can be joined.
		e := e.sub(t)
		plain := e.rig.BundleWith(t, "plain", busybox.Options{Args: []string{"sleep", "300"}, NoHostname: true})
		e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/sandbox", `{"status": "paused"}`)
		defer e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/sandbox", `{"status": "running"}`)
		var c api.Container
		decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/beside-paused", fmt.Sprintf(`{"bundlePath": %q, %s}`, plain, all)), &c)
		t.Cleanup(func() { e.do("DELETE", "/containers/beside-paused?force=true", "") })
		if got, want := nsOf(t, c.Processes[0].Pid, "uts"), nsOf(t, spid, "uts"); got != want {
			t.Errorf("UTS namespace %s, the paused sandbox's %s", got, want)
		}
	})

	t.Run("sandbox deleted", func(t *testing.T) {
		// The kernel keeps the namespaces while the joiner is in them:
		// it runs on, and only new joiners are refused.
		e := e.sub(t)
		var c api.Container
		decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/survivor", fmt.Sprintf(`{"bundlePath": %q, %s}`, app, all)), &c)
		t.Cleanup(func() { e.do("DELETE", "/containers/survivor?force=true", "") })
		net := nsOf(t, c.Processes[0].Pid, "net")
		e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/sandbox?force=true", "")
		if got := e.get("survivor"); got.State.Status != api.Running || nsOf(t, got.Processes[0].Pid, "net") != net {
			t.Errorf("after the sandbox went the joiner is %+v", got.State)
		}
		want(t, "join the deleted sandbox", e.do("POST", "/containers/late", fmt.Sprintf(`{"bundlePath": %q, %s}`, app, all)), 404, "sandbox")
	})
}

// TestJoinPath: a pod whose namespaces no container holds, bind mounts
// do (as a Kubernetes node agent pins them). Containers from a bundle and
// from an image join them by path, alone or beside a container's: they are
// in those namespaces, have that UTS namespace's host name, and their view
// names the paths as given. What is not a namespace file of the type named
// is refused.
func TestJoinPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	pinned := linuxtest.PinNamespaces(t, "pinned")
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/busybox:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sleep", "300"}}, registrytest.TarDir(t, e.rig.Rootfs))
	if a := e.pull(fmt.Sprintf(`{"reference": %q}`, ref)); a.status != nethttp.StatusOK || a.last().Image == nil {
		t.Fatalf("pull: %d %s", a.status, a.err.body)
	}
	sandbox := e.startContainer("sandbox", e.bundle("sandbox", "sleep", "300"))
	spid := sandbox.Processes[0].Pid
	hostname := []string{"sh", "-c", "hostname; exec sleep 300"}
	app := e.rig.BundleWith(t, "app", busybox.Options{Args: hostname, NoHostname: true})
	all := fmt.Sprintf(`"join": {"network": %q, "ipc": %q, "uts": %q}`, pinned.Network, pinned.IPC, pinned.UTS)

	for _, tc := range []struct {
		name, id, body string
		want           api.Join
		// files are the namespace files, by /proc/PID/ns name, that the
		// joiner's namespaces must be.
		files map[string]string
	}{
		{"bundle", "app", fmt.Sprintf(`{"bundlePath": %q, %s}`, app, all),
			api.Join{Network: pinned.Network, IPC: pinned.IPC, UTS: pinned.UTS},
			map[string]string{"net": pinned.Network, "ipc": pinned.IPC, "uts": pinned.UTS}},
		{"image", "img", fmt.Sprintf(`{"image": %q, "args": ["sh", "-c", "hostname; exec sleep 300"], %s}`, ref, all),
			api.Join{Network: pinned.Network, IPC: pinned.IPC, UTS: pinned.UTS},
			map[string]string{"net": pinned.Network, "ipc": pinned.IPC, "uts": pinned.UTS}},
		{"mixed", "mixed", fmt.Sprintf(`{"bundlePath": %q, "join": {"network": %q, "ipc": "sandbox", "uts": %q}}`, app, pinned.Network, pinned.UTS),
			api.Join{Network: pinned.Network, IPC: "sandbox", UTS: pinned.UTS},
			map[string]string{"net": pinned.Network, "ipc": fmt.Sprintf("/proc/%d/ns/ipc", spid), "uts": pinned.UTS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			var c api.Container
			decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/"+tc.id, tc.body), &c)
			t.Cleanup(func() { e.do("DELETE", "/containers/"+tc.id+"?force=true", "") })
			if c.Join == nil || *c.Join != tc.want {
				t.Errorf("the joiner's view says it joined %+v, want %+v", c.Join, tc.want)
			}
			if got := e.get(tc.id); got.Join == nil || *got.Join != tc.want {
				t.Errorf("GET says it joined %+v", got.Join)
			}
			pid := c.Processes[0].Pid
			for ns, file := range tc.files {
				if !linuxtest.SameNamespace(t, fmt.Sprintf("/proc/%d/ns/%s", pid, ns), file) {
					t.Errorf("%s namespace is not %s's", ns, file)
				}
			}
			var log string
			testutil.Eventually(t, "the joiner to print its host name", func() bool {
				log = string(e.do("GET", "/containers/"+tc.id+"/logs", "").body)
				return strings.Contains(log, "\n")
			})
			if log != "pinned\n" {
				t.Errorf("the joiner wrote %q, want the pinned UTS namespace's host name", log)
			}
		})
	}

	regular := filepath.Join(t.TempDir(), "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	named := e.bundle("named", "sleep", "300") // its config.json names the host
	start := func(bundle, join string) string {
		return fmt.Sprintf(`{"bundlePath": %q, "join": {%s}}`, bundle, join)
	}
	e.run(t, []request{
		{"relative path", "POST", "/containers/j1", start(app, `"network": "run/netns/x"`), 400, []string{"container id"}},
		{"path not clean", "POST", "/containers/j1", start(app, `"network": "/run/netns/../netns/x"`), 400, []string{"/run/netns/../netns/x", "clean"}},
		{"missing", "POST", "/containers/j1", start(app, fmt.Sprintf(`"network": %q`, regular+"-nosuch")), 404, []string{regular + "-nosuch", "no such file"}},
		{"a regular file", "POST", "/containers/j1", start(app, fmt.Sprintf(`"network": %q`, regular)), 400, []string{regular, "a regular file, not a namespace file"}},
		{"another type", "POST", "/containers/j1", start(app, `"network": "/proc/self/ns/ipc"`), 400, []string{"/proc/self/ns/ipc", "type ipc, not net"}},
		{"restore", "POST", "/containers/j1", fmt.Sprintf(`{"checkpoint": "c1", "join": {"network": %q}}`, pinned.Network), 400, []string{"restore", "joins none"}},
		{"bundle's hostname", "POST", "/containers/j1", start(named, fmt.Sprintf(`"uts": %q`, pinned.UTS)), 400, []string{"hostname", "UTS", pinned.UTS}},
		{"image's hostname", "POST", "/containers/j1", fmt.Sprintf(`{"image": %q, "hostname": "h", "join": {"uts": %q}}`, ref, pinned.UTS), 400, []string{"hostname", "UTS", pinned.UTS}},
	})
	want(t, "GET j1", e.do("GET", "/containers/j1", ""), 404)
}
