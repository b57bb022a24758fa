package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
)

// The contract's example container, as the daemon sends it.
const (
	redisJSON = `{"id": "redis", "bundlePath": "/containers/redis", "state": {"status": "running"},
 "processes": [{"pid": 11497, "args": ["redis-server", "--bind", "0.0.0.0"], "user": {"uid": 1000, "gid": 1000},
                "terminal": false, "env": ["PATH=/usr/bin:/bin"]},
               {"pid": 12, "args": ["sh"], "user": {"uid": 0, "gid": 0}, "terminal": false, "env": []}],
 "created": "2026-11-29T10:00:00Z"}`
	webJSON = `{"id": "web", "bundlePath": "/containers/web", "state": {"status": "stopped", "exitStatus": 137},
 "processes": [], "created": "2026-11-29T10:00:00Z"}`
	stateJSON = `{"containers": [` + redisJSON + `, ` + webJSON + `], "machine": {"cpus": 2, "memory": 7872909312}}`
)

// An image as the daemon sends it, and its digest.
const (
	imageDigest = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741"
	// On one line: a pull's stream carries it as one.
	imageJSON = `{"digest": "` + imageDigest + `", "names": ["127.0.0.1:5000/busybox:1"], "config": "sha256:cc", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024, "layers": [], "pulled": "2026-11-29T10:00:00Z", "containers": 2}`
)

// call is one request a command must make, and the fake daemon's answer.
type call struct {
	method string
	// path is the escaped path, with the query if any.
	path string
	// body is the request's JSON ("" for none), compared as JSON values.
	body   string
	status int
	answer string
}

// fakeDaemon serves calls, in order, checking each request, and checks when
// the test ends that every call was made.
func fakeDaemon(t *testing.T, calls ...call) *httptest.Server {
	t.Helper()
	var (
		mu   sync.Mutex
		next int
	)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		path := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			path += "?" + r.URL.RawQuery
		}
		if i >= len(calls) {
			t.Errorf("unexpected request %s %s", r.Method, path)
			w.WriteHeader(500)
			return
		}
		c := calls[i]
		if r.Method != c.method || path != c.path {
			t.Errorf("request %d: %s %s, want %s %s", i, r.Method, path, c.method, c.path)
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case c.body == "" && len(body) > 0:
			t.Errorf("request %d: body %s, want none", i, body)
		case c.body != "" && !jsonEqual(t, string(body), c.body):
			t.Errorf("request %d: body %s, want %s", i, body, c.body)
		}
		w.WriteHeader(c.status)
		_, _ = io.WriteString(w, c.answer)
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if next < len(calls) {
			t.Errorf("%d requests made, want %d", next, len(calls))
		}
	})
	return srv
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Errorf("not JSON: %q: %v", a, err)
		return false
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("test's JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// execute runs the troupe command line args in ctx.
func execute(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = executeTo(ctx, &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

// executeTo is execute writing to stdout and stderr as it goes, for a test
// that watches the output of a command still running.
func executeTo(ctx context.Context, stdout, stderr io.Writer, args ...string) error {
	root := newRootCommand()
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// syncBuffer is a bytes.Buffer that a command writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCommands(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	evStart := `{"id": 1, "type": "start", "container": "redis", "pid": 11497, "time": "2026-11-29T10:00:01Z"}`
	evExit := `{"id": 2, "type": "exit", "container": "redis", "pid": 11497, "exitStatus": 137, "time": "2026-11-29T10:00:02Z"}`
	var start, exit api.Event
	if err := json.Unmarshal([]byte(evStart), &start); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(evExit), &exit); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		calls []call
		// stdout is the output wanted; with jsonOut, a JSON document
		// compared as a value.
		stdout  string
		jsonOut bool
		stderr  string
		wantErr bool
	}{
		{
			name: "pull: a line per layer once complete, then the digest",
			args: []string{"pull", "127.0.0.1:5000/busybox:1"},
			calls: []call{{"POST", "/images", `{"reference": "127.0.0.1:5000/busybox:1"}`, 200,
				`{"layer": "sha256:1111111111111111aaaa", "total": 2097152, "done": 1048576}` + "\n" +
					`{"layer": "sha256:2222222222222222bbbb", "total": 512, "done": 512}` + "\n" +
					`{"layer": "sha256:1111111111111111aaaa", "total": 2097152, "done": 2097152}` + "\n" +
					`{"image": ` + imageJSON + `}` + "\n"}},
			stdout: "sha256:222222222222  pulled 512 B\nsha256:111111111111  pulled 2 MiB\n" + imageDigest + "\n",
		},
		{
			name:   "pull -q",
			args:   []string{"pull", "-q", "busybox"},
			calls:  []call{{"POST", "/images", `{"reference": "busybox"}`, 200, `{"layer": "sha256:11", "total": 1, "done": 1}` + "\n" + `{"image": ` + imageJSON + `}` + "\n"}},
			stdout: imageDigest + "\n",
		},
		{
			name:    "pull fails in the stream",
			args:    []string{"pull", "busybox"},
			calls:   []call{{"POST", "/images", `{"reference": "busybox"}`, 200, `{"error": {"error": "registry gone", "code": "unavailable"}}` + "\n"}},
			stderr:  "troupe: registry gone\n",
			wantErr: true,
		},
		{
			name:   "images",
			args:   []string{"images"},
			calls:  []call{{"GET", "/images", "", 200, `{"images": [` + imageJSON + `]}`}},
			stdout: "NAME                       DIGEST                SIZE    CONTAINERS   PULLED\n",
			// The PULLED column moves with the clock: checked by prefix below.
		},
		{
			name:   "images -q",
			args:   []string{"images", "-q"},
			calls:  []call{{"GET", "/images", "", 200, `{"images": [` + imageJSON + `]}`}},
			stdout: imageDigest + "\n",
		},
		{
			name: "rmi: one removed, one refused",
			args: []string{"rmi", "127.0.0.1:5000/busybox:1", "sha256:aa"},
			calls: []call{
				{"DELETE", "/images/127.0.0.1:5000/busybox:1", "", 200, imageJSON},
				{"DELETE", "/images/sha256:aa", "", 409, `{"error": "image sha256:aa is used by 1 containers (remove them first, or force)", "code": "failed_precondition"}`},
			},
			stdout:  "127.0.0.1:5000/busybox:1\n",
			stderr:  "troupe: image sha256:aa is used by 1 containers (remove them first, or force)\n",
			wantErr: true,
		},
		{
			name:   "rmi --force",
			args:   []string{"rmi", "--force", "sha256:aa"},
			calls:  []call{{"DELETE", "/images/sha256:aa?force=true", "", 200, imageJSON}},
			stdout: "sha256:aa\n",
		},
		{
			name: "run: the image is there, every flag, the command after the image",
			args: []string{"run", "-d", "--name", "web", "-e", "A=b", "--user", "app", "--workdir", "/srv", "--entrypoint", "/bin/sh",
				"--hostname", "h", "--read-only", "--memory", "64m", "--pids-limit", "100", "--cpus", "1.5", "--cpu-shares", "512",
				"--tmpfs", "/tmp:size=16m,mode=1777,exec", "-v", "/data:/data:ro", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
				"127.0.0.1:5000/busybox:1", "sh", "-c", "echo hi"},
			calls: []call{
				{"GET", "/images/127.0.0.1:5000/busybox:1", "", 200, imageJSON},
				{"POST", "/containers/web", `{"image": "127.0.0.1:5000/busybox:1", "pull": "missing", "env": ["A=b"], "user": "app",
					"cwd": "/srv", "entrypoint": ["/bin/sh"], "hostname": "h", "readOnlyRoot": true, "memory": 67108864, "pids": 100,
					"cpuQuota": 150000, "cpuPeriod": 100000, "cpuShares": 512, "args": ["sh", "-c", "echo hi"],
					"mounts": [{"type": "tmpfs", "destination": "/tmp", "size": 16777216, "mode": 1023, "exec": true},
					           {"type": "bind", "source": "/data", "destination": "/data", "readOnly": true}],
					"capAdd": ["NET_ADMIN"], "capDrop": ["ALL"]}`, 201, webJSON},
			},
			stdout: "web\n",
		},
		{
			name: "run: a missing image is pulled first, its progress on stderr",
			args: []string{"run", "--name", "web", "-d", "busybox"},
			calls: []call{
				{"GET", "/images/busybox", "", 404, `{"error": "image \"busybox\": not found", "code": "not_found"}`},
				{"POST", "/images", `{"reference": "busybox"}`, 200, `{"layer": "sha256:2222222222222222bbbb", "total": 512, "done": 512}` + "\n" + `{"image": ` + imageJSON + `}` + "\n"},
				{"POST", "/containers/web", `{"image": "busybox", "pull": "missing"}`, 201, webJSON},
			},
			stdout: "web\n",
			stderr: "sha256:222222222222  pulled 512 B\n",
		},
		{
			name: "run --pull never: straight to the start",
			args: []string{"run", "--name", "web", "--pull", "never", "--entrypoint", "", "busybox"},
			calls: []call{
				{"POST", "/containers/web", `{"image": "busybox", "pull": "never", "entrypoint": []}`, 404, `{"error": "start container \"web\": image \"busybox\": not found", "code": "not_found"}`},
			},
			stderr:  "troupe: start container \"web\": image \"busybox\": not found\n",
			wantErr: true,
		},
		{
			name: "run in a pod: --network, --ipc and --uts join another container's namespaces",
			args: []string{"run", "-d", "--name", "app", "--pull", "never", "--network", "container:pod1", "--ipc", "container:pod1",
				"--uts", "container:pod1", "busybox", "httpd", "-f"},
			calls: []call{
				{"POST", "/containers/app", `{"image": "busybox", "pull": "never", "args": ["httpd", "-f"],
					"join": {"network": "pod1", "ipc": "pod1", "uts": "pod1"}}`, 201, webJSON},
			},
			stdout: "web\n",
		},
		{
			name: "run in pinned namespaces: a path joins the namespace file, beside a container",
			args: []string{"run", "-d", "--name", "app", "--pull", "never", "--network", "/run/netns/pod1", "--ipc", "container:pod1",
				"--uts", "/run/pods/pod1/uts", "busybox"},
			calls: []call{
				{"POST", "/containers/app", `{"image": "busybox", "pull": "never",
					"join": {"network": "/run/netns/pod1", "ipc": "pod1", "uts": "/run/pods/pod1/uts"}}`, 201, webJSON},
			},
			stdout: "web\n",
		},
		{
			name:    "run --network host: only container:ID or a path",
			args:    []string{"run", "--network", "host", "busybox"},
			stderr:  "troupe: --network \"host\": want container:ID, to join that container's namespace, or the absolute path of a namespace file\n",
			wantErr: true,
		},
		{
			name: "start --network: a bundle joins a running container's namespace",
			args: []string{"start", "app", "/containers/app", "--network", "container:pod1"},
			calls: []call{{"POST", "/containers/app", `{"bundlePath": "/containers/app", "join": {"network": "pod1"}}`, 409,
				`{"error": "start container \"app\": join network of container \"pod1\": it is stopped, not running", "code": "failed_precondition"}`}},
			stderr:  "troupe: start container \"app\": join network of container \"pod1\": it is stopped, not running\n",
			wantErr: true,
		},
		{
			name:    "run --pull sometimes",
			args:    []string{"run", "--pull", "sometimes", "busybox"},
			stderr:  "troupe: --pull \"sometimes\": want never, missing or always\n",
			wantErr: true,
		},
		{
			name:    "run --tmpfs with an unknown option",
			args:    []string{"run", "--tmpfs", "/tmp:huge", "busybox"},
			stderr:  "troupe: --tmpfs \"/tmp:huge\": unknown option \"huge\" (want size=, mode=, exec, noexec, ro or rw)\n",
			wantErr: true,
		},
		{
			name:   "start",
			args:   []string{"start", "redis", "/containers/redis"},
			calls:  []call{{"POST", "/containers/redis", `{"bundlePath": "/containers/redis"}`, 201, redisJSON}},
			stdout: "redis\n",
		},
		{
			name:    "start from a checkpoint, JSON",
			args:    []string{"--json", "start", "clone", "/containers/redis", "--checkpoint", "redis/cp1"},
			calls:   []call{{"POST", "/containers/clone", `{"bundlePath": "/containers/redis", "checkpoint": "redis/cp1"}`, 201, redisJSON}},
			stdout:  redisJSON,
			jsonOut: true,
		},
		{
			name:   "start makes a relative bundle absolute",
			args:   []string{"start", "web", "bundles/web"},
			calls:  []call{{"POST", "/containers/web", `{"bundlePath": "` + filepath.Join(cwd, "bundles/web") + `"}`, 201, webJSON}},
			stdout: "web\n",
		},
		{
			name:    "start, the id is taken",
			args:    []string{"start", "redis", "/containers/redis"},
			calls:   []call{{"POST", "/containers/redis", `{"bundlePath": "/containers/redis"}`, 409, `{"error": "container \"redis\": already exists"}`}},
			stderr:  "troupe: container \"redis\": already exists\n",
			wantErr: true,
		},
		{
			name: "exec",
			args: []string{"exec", "-d", "redis", "--env", "A=b", "-e", "C=d,e", "--cwd", "/tmp", "--user", "1000:100", "--", "sh", "-c", "echo hi"},
			calls: []call{{"PUT", "/containers/redis/processes",
				`{"args": ["sh", "-c", "echo hi"], "env": ["A=b", "C=d,e"], "cwd": "/tmp", "user": {"uid": 1000, "gid": 100}}`,
				201, `{"pid": 12, "args": ["sh", "-c", "echo hi"], "user": {"uid": 1000, "gid": 100}, "terminal": false, "env": ["A=b", "C=d,e"]}`}},
			stdout: "12\n",
		},
		{
			name:   "exec -d without other flags",
			args:   []string{"exec", "redis", "-d", "ls"},
			calls:  []call{{"PUT", "/containers/redis/processes", `{"args": ["ls"]}`, 201, `{"pid": 13, "args": ["ls"], "user": {"uid": 0, "gid": 0}}`}},
			stdout: "13\n",
		},
		{
			name:    "exec, bad user",
			args:    []string{"exec", "redis", "--user", "redis", "--", "ls"},
			stderr:  "troupe: user \"redis\": want UID[:GID], numbers\n",
			wantErr: true,
		},
		{
			name:    "exec needs a command",
			args:    []string{"exec", "redis"},
			wantErr: true,
			stderr:  "troupe: requires at least 2 arg(s), only received 1\n",
		},
		{
			name:  "kill the init, TERM by default",
			args:  []string{"kill", "redis"},
			calls: []call{{"PATCH", "/containers/redis", `{"signal": 15}`, 200, redisJSON}},
		},
		{
			name:  "kill a process by name of signal",
			args:  []string{"kill", "-s", "KILL", "redis", "12"},
			calls: []call{{"POST", "/containers/redis/process/12", `{"signal": 9}`, 204, ""}},
		},
		{
			name:  "kill with a number, JSON prints nothing",
			args:  []string{"--json", "kill", "redis", "--signal", "2"},
			calls: []call{{"PATCH", "/containers/redis", `{"signal": 2}`, 200, redisJSON}},
		},
		{
			name:    "kill, unknown process",
			args:    []string{"kill", "redis", "999"},
			calls:   []call{{"POST", "/containers/redis/process/999", `{"signal": 15}`, 404, `{"error": "container \"redis\": process 999: not found"}`}},
			stderr:  "troupe: container \"redis\": process 999: not found\n",
			wantErr: true,
		},
		{
			name:    "kill, unknown signal",
			args:    []string{"kill", "-s", "FOO", "redis"},
			stderr:  "troupe: unknown signal \"FOO\"\n",
			wantErr: true,
		},
		{
			name:    "kill, bad pid",
			args:    []string{"kill", "redis", "x"},
			stderr:  "troupe: pid \"x\": want a positive number\n",
			wantErr: true,
		},
		{
			name:   "pause",
			args:   []string{"pause", "redis"},
			calls:  []call{{"PATCH", "/containers/redis", `{"status": "paused"}`, 200, redisJSON}},
			stdout: "redis\n",
		},
		{
			name:    "resume a stopped container",
			args:    []string{"resume", "web"},
			calls:   []call{{"PATCH", "/containers/web", `{"status": "running"}`, 409, `{"error": "container \"web\" is stopped"}`}},
			stderr:  "troupe: container \"web\" is stopped\n",
			wantErr: true,
		},
		{
			name:   "update",
			args:   []string{"update", "redis", "--memory", "64m", "--pids", "-1", "--cpu-shares", "512"},
			calls:  []call{{"PATCH", "/containers/redis", `{"resources": {"memory": 67108864, "cpuShares": 512, "pids": -1}}`, 200, redisJSON}},
			stdout: "redis\n",
		},
		{
			name:   "update memory only",
			args:   []string{"update", "redis", "--memory", "-1"},
			calls:  []call{{"PATCH", "/containers/redis", `{"resources": {"memory": -1}}`, 200, redisJSON}},
			stdout: "redis\n",
		},
		{
			name:    "update without a limit",
			args:    []string{"update", "redis"},
			stderr:  "troupe: at least one of the flags in the group [memory cpu-shares pids] is required\n",
			wantErr: true,
		},
		{
			name:  "ps",
			args:  []string{"ps"},
			calls: []call{{"GET", "/state", "", 200, stateJSON}},
			stdout: lines(
				"ID      STATUS          PIDS   INIT-PID   BUNDLE",
				"redis   running         2      11497      /containers/redis",
				"web     stopped (137)   0      -          /containers/web",
			),
		},
		{
			name:   "ls -q",
			args:   []string{"ls", "-q"},
			calls:  []call{{"GET", "/state", "", 200, stateJSON}},
			stdout: "redis\nweb\n",
		},
		{
			name:    "list --json",
			args:    []string{"list", "--json"},
			calls:   []call{{"GET", "/state", "", 200, stateJSON}},
			stdout:  `[` + redisJSON + `, ` + webJSON + `]`,
			jsonOut: true,
		},
		{
			name:    "ps --json, no containers",
			args:    []string{"ps", "--json"},
			calls:   []call{{"GET", "/state", "", 200, `{"containers": null, "machine": {"cpus": 2, "memory": 1}}`}},
			stdout:  `[]`,
			jsonOut: true,
		},
		{
			name:  "state",
			args:  []string{"state"},
			calls: []call{{"GET", "/state", "", 200, stateJSON}},
			stdout: lines(
				"machine: 2 CPUs, 7.3 GiB memory",
				"ID      STATUS          PIDS   INIT-PID   BUNDLE",
				"redis   running         2      11497      /containers/redis",
				"web     stopped (137)   0      -          /containers/web",
			),
		},
		{
			name:    "state --json",
			args:    []string{"state", "--json"},
			calls:   []call{{"GET", "/state", "", 200, stateJSON}},
			stdout:  stateJSON,
			jsonOut: true,
		},
		{
			name:    "inspect",
			args:    []string{"inspect", "redis"},
			calls:   []call{{"GET", "/containers/redis", "", 200, redisJSON}},
			stdout:  redisJSON,
			jsonOut: true,
		},
		{
			name:    "inspect, unknown container",
			args:    []string{"inspect", "nope"},
			calls:   []call{{"GET", "/containers/nope", "", 404, `{"error": "container \"nope\": not found"}`}},
			stderr:  "troupe: container \"nope\": not found\n",
			wantErr: true,
		},
		{
			name:  "top",
			args:  []string{"top", "redis"},
			calls: []call{{"GET", "/containers/redis", "", 200, redisJSON}},
			stdout: lines(
				"PID     USER        ARGS",
				"11497   1000:1000   redis-server --bind 0.0.0.0",
				"12      0:0         sh",
			),
		},
		{
			name: "rm",
			args: []string{"rm", "web", "old"},
			calls: []call{
				{"DELETE", "/containers/web", "", 204, ""},
				{"DELETE", "/containers/old", "", 204, ""},
			},
			stdout: "web\nold\n",
		},
		{
			name:   "rm -f",
			args:   []string{"rm", "-f", "redis"},
			calls:  []call{{"DELETE", "/containers/redis?force=true", "", 204, ""}},
			stdout: "redis\n",
		},
		{
			name: "rm goes on after a failure",
			args: []string{"rm", "redis", "web"},
			calls: []call{
				{"DELETE", "/containers/redis", "", 409, `{"error": "container \"redis\" is running"}`},
				{"DELETE", "/containers/web", "", 204, ""},
			},
			stdout:  "web\n",
			stderr:  "troupe: container \"redis\" is running\n",
			wantErr: true,
		},
		{
			name: "rm, several failures",
			args: []string{"rm", "a", "b"},
			calls: []call{
				{"DELETE", "/containers/a", "", 404, `{"error": "container \"a\": not found"}`},
				{"DELETE", "/containers/b", "", 404, `{"error": "container \"b\": not found"}`},
			},
			stderr:  "troupe: container \"a\": not found\ntroupe: container \"b\": not found\n",
			wantErr: true,
		},
		{
			name:   "checkpoint create",
			args:   []string{"checkpoint", "create", "redis", "cp1", "--exit", "--tcp", "--unix-sockets", "--shell"},
			calls:  []call{{"POST", "/containers/redis/checkpoint/cp1", `{"exit": true, "tcp": true, "unixSockets": true, "shell": true}`, 201, `{"name": "cp1", "tcp": true, "unixSockets": true, "shell": true}`}},
			stdout: "cp1\n",
		},
		{
			name:    "checkpoint create, no CRIU",
			args:    []string{"checkpoint", "create", "redis", "cp1"},
			calls:   []call{{"POST", "/containers/redis/checkpoint/cp1", `{}`, 503, `{"error": "checkpoint: criu 3.17.1 is too old, need 4.1"}`}},
			stderr:  "troupe: checkpoint: criu 3.17.1 is too old, need 4.1\n",
			wantErr: true,
		},
		{
			name:  "checkpoint ls",
			args:  []string{"checkpoint", "ls", "redis"},
			calls: []call{{"GET", "/containers/redis/checkpoint", "", 200, `[{"name": "cp1", "tcp": true, "unixSockets": false, "shell": false, "created": "2026-11-29T10:00:00Z"}]`}},
			stdout: lines(
				"NAME   CREATED                TCP    UNIX-SOCKETS   SHELL",
				"cp1    2026-11-29T10:00:00Z   true   false          false",
			),
		},
		{
			name:    "checkpoint list --json, none",
			args:    []string{"--json", "checkpoint", "list", "redis"},
			calls:   []call{{"GET", "/containers/redis/checkpoint", "", 200, `[]`}},
			stdout:  `[]`,
			jsonOut: true,
		},
		{
			name:   "checkpoint rm",
			args:   []string{"checkpoint", "rm", "redis", "cp1"},
			calls:  []call{{"DELETE", "/containers/redis/checkpoint/cp1", "", 204, ""}},
			stdout: "cp1\n",
		},
		{
			name:   "events until the daemon closes the stream",
			args:   []string{"events"},
			calls:  []call{{"GET", "/events", "", 200, evStart + "\n" + evExit + "\n"}},
			stdout: lines(formatEvent(start, time.Local), formatEvent(exit, time.Local)),
		},
		{
			name:   "events --json, since and container",
			args:   []string{"events", "--json", "--since", "0", "--container", "redis"},
			calls:  []call{{"GET", "/events?container=redis&since=0", "", 200, evStart + "\n" + evExit + "\n"}},
			stdout: lines(compact(t, evStart), compact(t, evExit)),
		},
		{
			name: "stats",
			args: []string{"stats", "redis"},
			calls: []call{{"GET", "/containers/redis/stats", "", 200,
				`{"cpuUsageNanos": 2000000, "memoryUsage": 1048576, "memoryLimit": 67108864, "memoryMaxUsage": 2097152, "oomKills": 0, "pids": 2, "pidsLimit": 64, "ioReadBytes": 0, "ioWriteBytes": 0}`}},
			stdout: lines(
				"CPU TIME    2ms",
				"MEMORY      1 MiB / 64 MiB (peak 2 MiB)",
				"OOM KILLS   0",
				"PIDS        2 / 64",
				"BLOCK I/O   read 0 B, write 0 B",
			),
		},
		{
			name:   "logs",
			args:   []string{"logs", "redis"},
			calls:  []call{{"GET", "/containers/redis/logs", "", 200, "1\n2\n\x00raw"}},
			stdout: "1\n2\n\x00raw",
		},
		{
			name:   "logs -f",
			args:   []string{"logs", "-f", "redis"},
			calls:  []call{{"GET", "/containers/redis/logs?follow=true", "", 200, "1\n"}},
			stdout: "1\n",
		},
		{
			name:   "logs --tail --since -t --streams",
			args:   []string{"logs", "--tail", "5", "--since", "10m", "-t", "--streams", "redis"},
			calls:  []call{{"GET", "/containers/redis/logs?since=10m&streams=true&tail=5&timestamps=true", "", 200, "x\n"}},
			stdout: "x\n",
		},
		{
			name:   "logs -f --tail 0: only what comes",
			args:   []string{"logs", "-f", "--tail", "0", "redis"},
			calls:  []call{{"GET", "/containers/redis/logs?follow=true&tail=0", "", 200, "new\n"}},
			stdout: "new\n",
		},
		{
			name:    "logs --tail bad",
			args:    []string{"logs", "--tail", "-3", "redis"},
			wantErr: true,
			stderr:  "troupe: --tail \"-3\": want a number of lines or all\n",
		},
		{
			name:   "version",
			args:   []string{"version"},
			calls:  []call{{"GET", "/version", "", 200, `{"version": "v0.1.0", "go": "go1.26.8", "runc": "v1.5.3"}`}},
			stdout: lines(clientVersionLine(), "daemon v0.1.0 (go1.26.8, runc v1.5.3)"),
		},
		{
			name:    "version --json",
			args:    []string{"version", "--json"},
			calls:   []call{{"GET", "/version", "", 200, `{"version": "v0.1.0", "go": "go1.26.8", "runc": "v1.5.3"}`}},
			stdout:  clientVersionJSON(`, "daemon": {"version": "v0.1.0", "go": "go1.26.8", "runc": "v1.5.3"}`),
			jsonOut: true,
		},
		{
			name:   "version, the daemon refuses",
			args:   []string{"version"},
			calls:  []call{{"GET", "/version", "", 401, `{"error": "missing bearer token"}`}},
			stdout: lines(clientVersionLine()),
			stderr: "daemon: missing bearer token\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeDaemon(t, tt.calls...)
			stdout, stderr, err := execute(t.Context(), append([]string{"--address=" + srv.URL}, tt.args...)...)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error %v", err, tt.wantErr)
			}
			if tt.jsonOut {
				if !jsonEqual(t, stdout, tt.stdout) {
					t.Errorf("stdout\n%s\nwant the JSON\n%s", stdout, tt.stdout)
				}
			} else if tt.name == "images" {
				if !strings.HasPrefix(stdout, tt.stdout) || !strings.Contains(stdout, "127.0.0.1:5000/busybox:1   sha256:3f57d9401f8d   1 KiB   2            ") {
					t.Errorf("stdout\n%s\nwant the header\n%s\nand a row of the image", stdout, tt.stdout)
				}
			} else if stdout != tt.stdout {
				t.Errorf("stdout\n%q\nwant\n%q", stdout, tt.stdout)
			}
			if stderr != tt.stderr {
				t.Errorf("stderr\n%q\nwant\n%q", stderr, tt.stderr)
			}
		})
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// clientVersionLine is the first line of `troupe version`, whose format
// scripts may rely on.
func clientVersionLine() string {
	return fmt.Sprintf("troupe %s (%s, %s/%s)", version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
}

func clientVersionJSON(daemon string) string {
	return fmt.Sprintf(`{"client": {"version": %q, "go": %q, "os": %q, "arch": %q}%s}`,
		version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH, daemon)
}

func TestVersionWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	stdout, stderr, err := execute(t.Context(), "version", "--address", "unix://"+sock)
	if err != nil {
		t.Errorf("error %v, want none: the daemon is optional", err)
	}
	if want := clientVersionLine() + "\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if !strings.HasPrefix(stderr, "daemon: GET /version: dial unix "+sock) {
		t.Errorf("stderr %q, want the reason the daemon did not answer", stderr)
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, stderr, err := execute(t.Context(), "ps", "--address", "unix://"+sock)
	if err == nil {
		t.Error("no error")
	}
	if want := "troupe: GET /state: dial unix " + sock + ": connect: no such file or directory\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestEnvironment checks that TROUPE_ADDRESS and TROUPE_TOKEN_FILE give the
// defaults of --address and --token-file, and that the flags win.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	envToken := filepath.Join(dir, "env-token")
	flagToken := filepath.Join(dir, "flag-token")
	if err := os.WriteFile(envToken, []byte("from-env\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flagToken, []byte("  from-flag  "), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// envAddr is TROUPE_ADDRESS, where "good" means the daemon's URL.
		envAddr string
		args    []string
		want    string // Authorization
	}{
		{"environment", "good", []string{"ps", "-q"}, "Bearer from-env"},
		{"flags win", "unix:///nonexistent.sock", []string{"ps", "-q", "--address", "good", "--token-file", flagToken}, "Bearer from-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				if got := r.Header.Get("Authorization"); got != tt.want {
					t.Errorf("Authorization %q, want %q", got, tt.want)
				}
				_, _ = io.WriteString(w, stateJSON)
			}))
			t.Cleanup(srv.Close)
			good := func(s string) string {
				if s == "good" {
					return srv.URL
				}
				return s
			}
			t.Setenv(envAddress, good(tt.envAddr))
			t.Setenv(envTokenFile, envToken)
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = good(a)
			}
			stdout, stderr, err := execute(t.Context(), args...)
			if err != nil || stdout != "redis\nweb\n" {
				t.Errorf("stdout %q, stderr %q, error %v", stdout, stderr, err)
			}
		})
	}
}

func TestTokenFileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "token")
	_, stderr, err := execute(t.Context(), "ps", "--address", "tcp://127.0.0.1:1", "--token-file", missing)
	if err == nil {
		t.Error("no error")
	}
	if want := "troupe: read token file: open " + missing + ": no such file or directory\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestEventsInterrupt checks that SIGINT ends `troupe events` cleanly: the
// events so far printed, no error, the request gone from the daemon.
func TestEventsInterrupt(t *testing.T) {
	streaming := make(chan struct{})
	gone := make(chan struct{})
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		defer close(gone)
		_, _ = io.WriteString(w, `{"id": 7, "type": "pause", "container": "redis", "time": "2026-11-29T10:00:01Z"}`+"\n")
		w.(nethttp.Flusher).Flush()
		close(streaming)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- executeTo(context.Background(), &stdout, &stderr, "events", "--json", "--address", srv.URL)
	}()
	testutil.DoneWithin(t, 10*time.Second, "the command to ask for events", streaming)
	// The event is on its way: interrupt the command once it has printed
	// it ("sent" is not "printed").
	testutil.EventuallyWithin(t, 10*time.Second, "the command to print the event", func() bool {
		return strings.HasSuffix(stdout.String(), "\n")
	})
	// The command watches for SIGINT before it sends its request, so the
	// signal cannot reach the test binary's default handler.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var res struct {
		stdout, stderr string
		err            error
	}
	res.err = testutil.ReceiveWithin(t, 10*time.Second, "SIGINT to end the command", done)
	res.stdout, res.stderr = stdout.String(), stderr.String()
	if res.err != nil || res.stderr != "" {
		t.Errorf("error %v, stderr %q; want a clean end", res.err, res.stderr)
	}
	if want := `{"id":7,"type":"pause","container":"redis","time":"2026-11-29T10:00:01Z"}` + "\n"; res.stdout != want {
		t.Errorf("stdout %q, want %q", res.stdout, want)
	}
	testutil.DoneWithin(t, 10*time.Second, "the request to end on the daemon", gone)
}
