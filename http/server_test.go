package http

import (
	"fmt"
	nethttp "net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime"
)

// ticker is an init that writes a line every 20 ms: its log grows while it
// runs and stands still while it is frozen.
var ticker = []string{"sh", "-c", "echo hello; echo oops >&2; while true; do echo x; usleep 20000; done"}

// request is one row of an error-case table.
type request struct {
	name         string
	method, path string
	body         string
	status       int
	// contains are what the error message must mention.
	contains []string
}

// run sends each row as a subtest.
func (e *env) run(t *testing.T, rows []request) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			want(t, r.method+" "+r.path, e.sub(t).do(r.method, r.path, r.body), r.status, r.contains...)
		})
	}
}

func TestStartContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sleep := e.bundle("sleep", "sleep", "300")

	r := e.mustStatus(nethttp.StatusCreated, "POST", "/containers/web", fmt.Sprintf(`{"bundlePath": %q}`, sleep))
	if loc := r.header.Get("Location"); loc != "/containers/web" {
		t.Errorf("Location %q, want /containers/web", loc)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var c api.Container
	decodeBody(t, r, &c)
	if c.ID != "web" || c.BundlePath != sleep || c.State.Status != api.Running || c.State.ExitStatus != nil {
		t.Errorf("start answered %+v", c)
	}
	if len(c.Processes) != 1 {
		t.Fatalf("start answered processes %+v, want the init alone", c.Processes)
	}
	init := c.Processes[0]
	if !slices.Equal(init.Args, []string{"sleep", "300"}) || init.Terminal || init.User.UID != 0 {
		t.Errorf("init %+v, want the bundle's sleep 300 as root", init)
	}
	if !alive(init.Pid) {
		t.Errorf("init pid %d is not a live host process", init.Pid)
	}
	// A host pid of a process in the container's own pid namespace.
	mine, _ := os.Readlink("/proc/self/ns/pid")
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init.Pid))
	if err != nil || theirs == mine {
		t.Errorf("init pid %d: pid namespace %q (%v), ours %q", init.Pid, theirs, err, mine)
	}

	t.Run("get", func(t *testing.T) {
		got := e.sub(t).get("web")
		if got.ID != "web" || got.State.Status != api.Running || len(got.Processes) != 1 || got.Processes[0].Pid != init.Pid {
			t.Errorf("get answered %+v", got)
		}
	})
	t.Run("list", func(t *testing.T) {
		var l api.ContainerList
		decodeBody(t, e.do("GET", "/containers", ""), &l)
		if len(l.Containers) != 1 || l.Containers[0].ID != "web" {
			t.Errorf("list answered %+v", l.Containers)
		}
	})
	t.Run("state", func(t *testing.T) {
		r := e.do("GET", "/state", "")
		want(t, "GET /state", r, nethttp.StatusOK)
		var st struct {
			Containers []api.Container `json:"containers"`
			Machine    struct {
				CPUs   int    `json:"cpus"`
				Memory uint64 `json:"memory"`
			} `json:"machine"`
		}
		decodeBody(t, r, &st)
		if len(st.Containers) != 1 || st.Containers[0].ID != "web" || len(st.Containers[0].Processes) != 1 ||
			st.Containers[0].Processes[0].Pid != init.Pid || st.Containers[0].State.Status != api.Running {
			t.Errorf("state lists %+v", st.Containers)
		}
		if st.Machine.CPUs <= 0 || st.Machine.Memory == 0 {
			t.Errorf("machine %+v, want cpus and memory", st.Machine)
		}
	})

	noConfig := e.dir // exists, holds no config.json
	big := `{"bundlePath": "/` + strings.Repeat("a", MaxBodySize) + `"}`
	e.run(t, []request{
		{"taken id", "POST", "/containers/web", fmt.Sprintf(`{"bundlePath": %q}`, sleep), 409, []string{"web"}},
		{"dot-dot id", "POST", "/containers/..x", fmt.Sprintf(`{"bundlePath": %q}`, sleep), 400, []string{"container id", "..x"}},
		{"escaped slash id", "POST", "/containers/a%2Fb", fmt.Sprintf(`{"bundlePath": %q}`, sleep), 400, []string{"container id", "a/b"}},
		{"leading dash id", "POST", "/containers/-x", fmt.Sprintf(`{"bundlePath": %q}`, sleep), 400, []string{"container id"}},
		{"long id", "POST", "/containers/" + strings.Repeat("a", 129), fmt.Sprintf(`{"bundlePath": %q}`, sleep), 400, []string{"container id"}},
		{"missing bundlePath", "POST", "/containers/a1", `{}`, 400, []string{"bundlePath"}},
		{"empty body", "POST", "/containers/a1", "", 400, []string{"bundlePath"}},
		{"null body", "POST", "/containers/a1", "null", 400, []string{"bundlePath"}},
		{"relative bundlePath", "POST", "/containers/a1", `{"bundlePath": "bundles/sleep"}`, 400, []string{"bundles/sleep", "absolute"}},
		{"bundle without config.json", "POST", "/containers/a1", fmt.Sprintf(`{"bundlePath": %q}`, noConfig), 400, []string{"config.json"}},
		{"missing bundle", "POST", "/containers/a1", `{"bundlePath": "/no/such/bundle"}`, 400, []string{"/no/such/bundle"}},
		{"malformed JSON", "POST", "/containers/a1", `{"bundlePath": `, 400, []string{"malformed JSON"}},
		{"not JSON", "POST", "/containers/a1", `bundlePath=/x`, 400, []string{"malformed JSON"}},
		{"array", "POST", "/containers/a1", `[]`, 400, nil},
		{"trailing brace", "POST", "/containers/a1", fmt.Sprintf(`{"bundlePath": %q}}`, sleep), 400, []string{"malformed JSON"}},
		{"two values", "POST", "/containers/a1", fmt.Sprintf(`{"bundlePath": %q} {}`, sleep), 400, []string{"more than one"}},
		{"wrong type", "POST", "/containers/a1", `{"bundlePath": 5}`, 400, []string{"bundlePath"}},
		{"unknown field", "POST", "/containers/a1", fmt.Sprintf(`{"bundlePath": %q, "bundel": 1}`, sleep), 400, []string{"unknown field", "bundel"}},
		{"case typo", "POST", "/containers/a1", fmt.Sprintf(`{"bundlepath": %q}`, sleep), 400, []string{"unknown field", "bundlepath"}},
		{"body too large", "POST", "/containers/a1", big, 413, []string{"1048576"}},
		{"checkpoint", "POST", "/containers/a1", fmt.Sprintf(`{"bundlePath": %q, "checkpoint": "c1"}`, sleep), 503, []string{"checkpoint", "not available"}},
		{"get unknown", "GET", "/containers/nosuch", "", 404, []string{"nosuch"}},
		{"get bad id", "GET", "/containers/..x", "", 400, []string{"container id"}},
	})
	// Nothing of the refused starts is left.
	want(t, "GET a1", e.do("GET", "/containers/a1", ""), 404)
	var l api.ContainerList
	decodeBody(t, e.do("GET", "/containers", ""), &l)
	if len(l.Containers) != 1 {
		t.Errorf("after the refused starts the daemon lists %d containers, want 1", len(l.Containers))
	}
	e.healthy("after-errors")
	// a1 was refused many times; the id is free.
	e.startContainer("a1", sleep)
}

func TestProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sleep := e.bundle("sleep", "sleep", "300")
	e.startContainer("box", sleep)

	for _, path := range []string{"/processes", "/process"} {
		t.Run("exec"+path, func(t *testing.T) {
			r := e.do("PUT", "/containers/box"+path, `{"args": ["sleep", "200"], "env": ["PATH=/bin", "A=b"], "cwd": "/tmp", "user": {"uid": 65534, "gid": 65534}}`)
			want(t, "exec", r, nethttp.StatusCreated)
			var p api.Process
			decodeBody(t, r, &p)
			if !alive(p.Pid) || !slices.Equal(p.Args, []string{"sleep", "200"}) || p.User.UID != 65534 || p.Cwd != "/tmp" {
				t.Errorf("exec answered %+v (alive %v)", p, alive(p.Pid))
			}
			c := e.sub(t).get("box")
			if !slices.ContainsFunc(c.Processes, func(q api.Process) bool { return q.Pid == p.Pid }) {
				t.Errorf("processes %+v lack the exec'd %d", c.Processes, p.Pid)
			}
		})
	}

	// Each signal, by number or name, kills its own exec'd sleep, which
	// then leaves the container's processes.
	for _, sig := range []string{`15`, `"SIGTERM"`, `"TERM"`, `"term"`, `9`, `"SIGKILL"`, `"15"`} {
		for _, path := range []string{"/process/", "/processes/"} {
			t.Run("signal "+sig+" via "+path, func(t *testing.T) {
				te := e.sub(t)
				pid := te.exec("box", "sleep", "200")
				want(t, "signal", te.do("POST", fmt.Sprintf("/containers/box%s%d", path, pid), `{"signal": `+sig+`}`), nethttp.StatusNoContent)
				testutil.Eventually(t, "the signalled process to die", func() bool { return !alive(pid) })
				testutil.Eventually(t, "the process to leave processes", func() bool {
					return !slices.ContainsFunc(te.get("box").Processes, func(q api.Process) bool { return q.Pid == pid })
				})
			})
		}
	}

	init := e.get("box").Processes[0].Pid
	victim := e.exec("box", "sleep", "200")
	sig := func(pid any) string { return fmt.Sprintf("/containers/box/process/%v", pid) }
	e.run(t, []request{
		{"exec without args", "PUT", "/containers/box/processes", `{}`, 400, []string{"args"}},
		{"exec empty args", "PUT", "/containers/box/processes", `{"args": []}`, 400, []string{"args"}},
		{"exec empty body", "PUT", "/containers/box/processes", ``, 400, []string{"args"}},
		{"exec unknown field", "PUT", "/containers/box/processes", `{"args": ["true"], "tty": true}`, 400, []string{"unknown field", "tty"}},
		{"exec unknown user field", "PUT", "/containers/box/processes", `{"args": ["true"], "user": {"uid": 0, "name": "root"}}`, 400, []string{"name"}},
		{"exec, a console size without a terminal", "PUT", "/containers/box/processes", `{"args": ["sh"], "consoleSize": {"width": 80, "height": 24}}`, 400, []string{"terminal"}},
		{"exec negative uid", "PUT", "/containers/box/processes", `{"args": ["true"], "user": {"uid": -1, "gid": 0}}`, 400, []string{"uid"}},
		{"exec args not strings", "PUT", "/containers/box/processes", `{"args": [1, 2]}`, 400, []string{"args"}},
		{"exec malformed", "PUT", "/containers/box/processes", `{"args": [`, 400, []string{"malformed JSON"}},
		{"exec unknown container", "PUT", "/containers/nosuch/processes", `{"args": ["true"]}`, 404, []string{"nosuch"}},
		{"exec bad id", "PUT", "/containers/..x/process", `{"args": ["true"]}`, 400, []string{"container id"}},
		{"signal 0", "POST", sig(victim), `{"signal": 0}`, 400, []string{"signal"}},
		{"signal 99", "POST", sig(victim), `{"signal": 99}`, 400, []string{"99"}},
		{"signal -9", "POST", sig(victim), `{"signal": -9}`, 400, []string{"signal"}},
		{"signal NOPE", "POST", sig(victim), `{"signal": "NOPE"}`, 400, []string{"NOPE"}},
		{"signal float", "POST", sig(victim), `{"signal": 1.5}`, 400, []string{"signal"}},
		{"signal bool", "POST", sig(victim), `{"signal": true}`, 400, []string{"signal"}},
		{"signal missing", "POST", sig(victim), `{}`, 400, []string{"signal"}},
		{"signal empty body", "POST", sig(victim), ``, 400, []string{"signal"}},
		{"signal typo", "POST", sig(victim), `{"singal": 9}`, 400, []string{"unknown field", "singal"}},
		{"pid abc", "POST", sig("abc"), `{"signal": 9}`, 400, []string{"abc"}},
		{"pid 0", "POST", sig(0), `{"signal": 9}`, 400, []string{"pid"}},
		{"pid -5", "POST", sig(-5), `{"signal": 9}`, 400, []string{"pid"}},
		{"pid 1", "POST", sig(1), `{"signal": 9}`, 404, []string{"1"}},
		{"our own pid", "POST", sig(os.Getpid()), `{"signal": 9}`, 404, []string{fmt.Sprint(os.Getpid())}},
		{"signal unknown container", "POST", fmt.Sprintf("/containers/nosuch/process/%d", victim), `{"signal": 9}`, 404, []string{"nosuch"}},
	})
	// None of that touched the processes.
	if !alive(victim) || !alive(init) {
		t.Fatalf("after the refused requests: victim alive %v, init alive %v", alive(victim), alive(init))
	}

	// A paused container takes no process.
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/box", `{"status": "paused"}`)
	want(t, "exec into paused", e.do("PUT", "/containers/box/processes", `{"args": ["true"]}`), 409, "paused")
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/box", `{"status": "running"}`)

	// Nor a stopped one, and its pids are no longer anyone's to signal.
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/box", `{"signal": "KILL"}`)
	testutil.Eventually(t, "box to stop", func() bool { return e.get("box").State.Status == api.Stopped })
	if c := e.get("box"); len(c.Processes) != 0 {
		t.Errorf("stopped box lists processes %+v", c.Processes)
	}
	testutil.Eventually(t, "the exec'd process to die with the init", func() bool { return !alive(victim) })
	want(t, "exec into stopped", e.do("PUT", "/containers/box/process", `{"args": ["true"]}`), 409, "stopped")
	want(t, "signal in stopped", e.do("POST", sig(init), `{"signal": 9}`), 409, "stopped")

	e.healthy("after-errors")
}

func TestPatchContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.startContainer("tick", e.bundle("tick", ticker...))
	logLen := func() int {
		t.Helper()
		return len(e.mustStatus(nethttp.StatusOK, "GET", "/containers/tick/logs", "").body)
	}
	patch := func(body string, status api.Status) {
		t.Helper()
		var c api.Container
		decodeBody(t, e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/tick", body), &c)
		if c.State.Status != status {
			t.Errorf("PATCH %s answered status %s, want %s", body, c.State.Status, status)
		}
		if got := e.get("tick").State.Status; got != status {
			t.Errorf("after PATCH %s GET says %s, want %s", body, got, status)
		}
	}
	n := logLen()
	testutil.Eventually(t, "the ticker to write", func() bool { return logLen() > n })

	patch(`{"status": "paused"}`, api.Paused)
	frozen := logLen()
	// That nothing happens can only be watched for a while: 300 ms is
	// fifteen of the ticker's lines had it not been frozen. The sleep is
	// the observation, not an ordering.
	time.Sleep(300 * time.Millisecond)
	if n := logLen(); n != frozen {
		t.Errorf("log grew from %d to %d bytes while paused", frozen, n)
	}
	patch(`{"status": "paused"}`, api.Paused) // no-op
	patch(`{}`, api.Paused)                   // no change, the view
	patch(`{"status": "running"}`, api.Running)
	testutil.Eventually(t, "the ticker to write again", func() bool { return logLen() > frozen })
	patch(`{"status": "running"}`, api.Running) // no-op

	t.Run("resources", func(t *testing.T) {
		e := e.sub(t)
		e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/tick", `{"resources": {"memory": 67108864, "pids": 50}}`)
		var st runtime.Stats
		decodeBody(t, e.mustStatus(nethttp.StatusOK, "GET", "/containers/tick/stats", ""), &st)
		if st.MemoryLimit != 67108864 || st.PidsLimit != 50 {
			t.Errorf("after the update stats say memory limit %d, pids limit %d; want 67108864, 50", st.MemoryLimit, st.PidsLimit)
		}
		e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/tick", `{"resources": {"cpuShares": 512}}`)
	})

	e.run(t, []request{
		{"bogus status", "PATCH", "/containers/tick", `{"status": "bogus"}`, 400, []string{"bogus"}},
		{"stopped status", "PATCH", "/containers/tick", `{"status": "stopped"}`, 400, []string{"stopped"}},
		{"status not a string", "PATCH", "/containers/tick", `{"status": 1}`, 400, []string{"status"}},
		{"unknown field", "PATCH", "/containers/tick", `{"staus": "paused"}`, 400, []string{"unknown field", "staus"}},
		{"unknown resources field", "PATCH", "/containers/tick", `{"resources": {"mem": 1}}`, 400, []string{"unknown field", "mem"}},
		{"zero memory", "PATCH", "/containers/tick", `{"resources": {"memory": 0}}`, 400, []string{"memory"}},
		{"negative pids", "PATCH", "/containers/tick", `{"resources": {"pids": -7}}`, 400, []string{"pids"}},
		{"signal 0", "PATCH", "/containers/tick", `{"signal": 0}`, 400, []string{"signal"}},
		{"signal name", "PATCH", "/containers/tick", `{"signal": "SIGNOPE"}`, 400, []string{"SIGNOPE"}},
		{"malformed", "PATCH", "/containers/tick", `{"status": "paused"`, 400, []string{"malformed JSON"}},
		{"unknown container", "PATCH", "/containers/nosuch", `{"status": "paused"}`, 404, []string{"nosuch"}},
		{"bad id", "PATCH", "/containers/..x", `{"status": "paused"}`, 400, []string{"container id"}},
	})
	if got := e.get("tick").State.Status; got != api.Running {
		t.Fatalf("after the refused patches tick is %s", got)
	}

	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/tick", `{"signal": 9}`)
	testutil.Eventually(t, "tick to stop", func() bool { return e.get("tick").State.Status == api.Stopped })
	c := e.get("tick")
	if c.State.ExitStatus == nil || *c.State.ExitStatus != 137 || len(c.Processes) != 0 {
		t.Errorf("killed tick: %+v", c)
	}
	e.run(t, []request{
		{"pause stopped", "PATCH", "/containers/tick", `{"status": "paused"}`, 409, []string{"tick", "stopped"}},
		{"resume stopped", "PATCH", "/containers/tick", `{"status": "running"}`, 409, []string{"tick", "stopped"}},
		{"signal stopped", "PATCH", "/containers/tick", `{"signal": 15}`, 409, []string{"tick", "stopped"}},
		{"resources of stopped", "PATCH", "/containers/tick", `{"resources": {"pids": 10}}`, 409, []string{"tick", "stopped"}},
	})
	// It stays listed, stopped, until deleted: watched for a moment after
	// the refusals above, as nothing announces that it was not removed.
	time.Sleep(100 * time.Millisecond)
	if c := e.get("tick"); c.State.Status != api.Stopped || c.State.ExitStatus == nil || *c.State.ExitStatus != 137 {
		t.Errorf("stopped tick later: %+v", c.State)
	}
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/tick", "")
	want(t, "GET deleted", e.do("GET", "/containers/tick", ""), 404)
	e.healthy("after-errors")
}

func TestDeleteContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sleep := e.bundle("sleep", "sleep", "300")
	c := e.startContainer("d1", sleep)
	pid := c.Processes[0].Pid

	e.run(t, []request{
		{"running without force", "DELETE", "/containers/d1", "", 409, []string{"d1", "force"}},
		{"force false", "DELETE", "/containers/d1?force=false", "", 409, []string{"d1"}},
		{"force maybe", "DELETE", "/containers/d1?force=maybe", "", 400, []string{"maybe"}},
		{"unknown", "DELETE", "/containers/nosuch", "", 404, []string{"nosuch"}},
		{"unknown with force", "DELETE", "/containers/nosuch?force=true", "", 404, []string{"nosuch"}},
		{"bad id", "DELETE", "/containers/..x?force=true", "", 400, []string{"container id"}},
	})
	if !alive(pid) {
		t.Fatal("a refused delete killed the init")
	}
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/d1?force=true", "")
	if alive(pid) {
		t.Errorf("force delete left the init %d alive", pid)
	}
	want(t, "GET deleted", e.do("GET", "/containers/d1", ""), 404, "d1")
	want(t, "DELETE deleted", e.do("DELETE", "/containers/d1?force=true", ""), 404, "d1")

	// The id is free at once.
	c = e.startContainer("d1", sleep)
	if c.Processes[0].Pid == pid || !alive(c.Processes[0].Pid) {
		t.Errorf("the reused id runs %+v", c.Processes)
	}

	// A stopped container needs no force.
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/d1", `{"signal": "SIGKILL"}`)
	testutil.Eventually(t, "d1 to stop", func() bool { return e.get("d1").State.Status == api.Stopped })
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/d1", "")

	// A paused one needs force, and force kills it although it is frozen.
	c = e.startContainer("d2", sleep)
	e.mustStatus(nethttp.StatusOK, "PATCH", "/containers/d2", `{"status": "paused"}`)
	want(t, "delete paused", e.do("DELETE", "/containers/d2", ""), 409, "d2")
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/d2?force=1", "")
	if alive(c.Processes[0].Pid) {
		t.Errorf("force delete of a paused container left its init alive")
	}

	var l api.ContainerList
	decodeBody(t, e.do("GET", "/containers", ""), &l)
	if len(l.Containers) != 0 {
		t.Errorf("after deleting all the daemon lists %+v", l.Containers)
	}
	if ids, _ := e.rt.List(t.Context()); len(ids) != 0 {
		t.Errorf("the runtime still has %v", ids)
	}
}
