package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// badInputConns is the --max-connections of TestBadInput's daemon.
const badInputConns = 8

// badInput is one row of TestBadInput: a request (or a daemon) a careless
// or hostile client would make, and the refusal it must get.
type badInput struct {
	name string
	// ids are the container ids the row names: none may keep a state dir,
	// a log or a checkpoint dir after it.
	ids []string
	// do makes the request and returns its status and body; a row that
	// starts a daemon returns that daemon's exit code and output instead.
	do func(t *testing.T) (int, string)
	// status is the answer wanted; contains, what its message must name.
	status   int
	contains []string
}

// TestBadInput sends a real daemon bad input of every kind the API has met:
// each must be answered with a 4xx that names the problem (a daemon refused
// with a message that says why), and leave nothing behind — no process, no
// cgroup, no state dir, no log, no checkpoint dir, no slot of the start
// admission: after each, a normal start still works at once, and the
// container the rows exec into and update runs on untouched.
func TestBadInput(t *testing.T) {
	d := startDaemon(t, "--max-starts", "2", "--max-connections", strconv.Itoa(badInputConns))
	b := newBundles(t, d)

	// The container the exec and update rows aim at: 10 MB of its memory
	// are in a tmpfs, so that a smaller limit is one the kernel refuses.
	victim := b.make("victim", "sh", "-c", "head -c 10000000 /dev/zero > /dev/shm/fill; exec sleep 600")
	if code, body := d.call(t, "POST", "/containers/victim", `{"bundlePath": "`+victim+`"}`); code != 201 {
		t.Fatalf("start victim: %d %s", code, body)
	}
	testutil.Eventually(t, "the victim to fill its tmpfs", func() bool {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", d.cgroup, "victim", "memory.usage_in_bytes"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil && n > 10_000_000
	})
	baseline := d.cgroupDirs(t)

	fifo := b.fifo("fifo")
	archive := testArchive(t)
	rows := []badInput{
		{
			name: "config.json is a FIFO, more starts than slots",
			ids:  []string{"fifo0", "fifo1", "fifo2", "fifo3", "fifo4"},
			do: func(t *testing.T) (int, string) {
				// Five at once, with two slots: before, each blocked for
				// ever holding a slot, and every later start waited.
				return concurrently(t, 5, func(i int) (int, string) {
					return d.callWithin(t, 20*time.Second, "POST", fmt.Sprintf("/containers/fifo%d", i), `{"bundlePath": "`+fifo+`"}`)
				})
			},
			status: 400, contains: []string{"config.json", "not a regular file", "FIFO"},
		},
		{
			name: "bodies that stop coming, on every connection there may be",
			ids:  []string{"slow"},
			do: func(t *testing.T) (int, string) {
				return d.stalledBodies(t, badInputConns)
			},
			status: 400, contains: []string{"request body stopped coming"},
		},
		{
			name: "exec of a missing program",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["no-such-program", "x"]}`)
			},
			status: 400, contains: []string{`"no-such-program"`, "not found"},
		},
		{
			name: "exec with a NUL in the environment",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["true"], "env": ["A\u0000=b"]}`)
			},
			status: 400, contains: []string{"env[0]", "NUL"},
		},
		{
			name: "exec with an environment entry without =",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["true"], "env": ["A=b", "PATH"]}`)
			},
			status: 400, contains: []string{`env[1] "PATH"`, "KEY=value"},
		},
		{
			name: "exec with a relative cwd",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["true"], "cwd": "tmp"}`)
			},
			status: 400, contains: []string{"cwd", "absolute"},
		},
		{
			name: "exec in a directory that does not exist",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["true"], "cwd": "/no/such/dir"}`)
			},
			status: 400, contains: []string{"/no/such/dir"},
		},
		{
			name: "exec as uid 2^32, which the kernel would take as root",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["sleep", "100"], "user": {"uid": 4294967296}}`)
			},
			status: 400, contains: []string{"user.uid 4294967296", "4294967294"},
		},
		{
			name: "exec as uid 2^32+1000, which the kernel would take as 1000",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["sleep", "100"], "user": {"uid": 4294968296, "gid": 0}}`)
			},
			status: 400, contains: []string{"user.uid 4294968296"},
		},
		{
			name: "exec with gid -1 among the additional gids",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/victim/processes", `{"args": ["true"], "user": {"uid": 0, "gid": 0, "additionalGids": [1, -1]}}`)
			},
			status: 400, contains: []string{"user.additionalGids[1] -1"},
		},
		{
			name: "cpu shares beyond the kernel's bound",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PATCH", "/containers/victim", `{"resources": {"cpuShares": 99999999999}}`)
			},
			status: 400, contains: []string{"cpuShares 99999999999", "262144"},
		},
		{
			name: "a memory limit of one byte",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PATCH", "/containers/victim", `{"resources": {"memory": 1}}`)
			},
			status: 400, contains: []string{"memory 1", "at least"},
		},
		{
			name: "a memory limit below what the container uses",
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PATCH", "/containers/victim", `{"resources": {"memory": 8388608}}`)
			},
			status: 409, contains: []string{"memory limit to 8388608", "current usage"},
		},
		{
			name: "bundle whose rlimit is soft above hard",
			ids:  []string{"rlimit"},
			do: d.start("rlimit", b.edit("rlimit", func(s map[string]any) {
				s["process"].(map[string]any)["rlimits"] = []any{map[string]any{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}}
			})),
			status: 400, contains: []string{"process.rlimits[0]", "RLIMIT_NOFILE", "soft limit 2048", "hard limit 1024"},
		},
		{
			name: "bundle with a one-byte memory limit",
			ids:  []string{"tiny"},
			do: d.start("tiny", b.edit("tiny", func(s map[string]any) {
				s["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": 1}}
			})),
			status: 400, contains: []string{"linux.resources.memory.limit 1", "at least"},
		},
		{
			name: "bundle with cpu shares beyond the kernel's bound",
			ids:  []string{"shares"},
			do: d.start("shares", b.edit("shares", func(s map[string]any) {
				s["linux"].(map[string]any)["resources"] = map[string]any{"cpu": map[string]any{"shares": 99999999999}}
			})),
			status: 400, contains: []string{"linux.resources.cpu.shares 99999999999"},
		},
		{
			name: "bundle whose rootfs is a symlink",
			ids:  []string{"symlinked"},
			do:   d.start("symlinked", b.symlinkedRootfs("symlinked")),
			// It names the real directory to give instead.
			status: 400, contains: []string{"root.path", "symlink", b.rootfs},
		},
		{
			name: "bundle whose program does not exist",
			ids:  []string{"noprog"},
			do: d.start("noprog", b.edit("noprog", func(s map[string]any) {
				s["process"].(map[string]any)["args"] = []any{"no-such-program"}
			})),
			status: 400, contains: []string{`"no-such-program"`, "not found"},
		},
		{
			name: "bundle with an environment entry without =",
			ids:  []string{"badenv"},
			do: d.start("badenv", b.edit("badenv", func(s map[string]any) {
				s["process"].(map[string]any)["env"] = []any{"PATH"}
			})),
			status: 400, contains: []string{"process.env[0]", "KEY=value"},
		},
		{
			name: "bundle whose uid is (uid_t)-1",
			ids:  []string{"minusone"},
			do: d.start("minusone", b.edit("minusone", func(s map[string]any) {
				s["process"].(map[string]any)["user"] = map[string]any{"uid": 4294967295, "gid": 0}
			})),
			status: 400, contains: []string{"process.user.uid 4294967295"},
		},
		{
			name: "truncated archive",
			ids:  []string{"imported"},
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/imported/checkpoint/cp1/archive", string(archive.full[:len(archive.full)/2]))
			},
			status: 400, contains: []string{"imported/cp1", "truncated"},
		},
		{
			name: "archive cut where an entry ends",
			ids:  []string{"imported"},
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/imported/checkpoint/cp1/archive", string(archive.unterminated))
			},
			status: 400, contains: []string{"imported/cp1", "end marker"},
		},
		{
			name: "archive that is no tar",
			ids:  []string{"imported"},
			do: func(t *testing.T) (int, string) {
				return d.call(t, "PUT", "/containers/imported/checkpoint/cp1/archive", strings.Repeat("not a tar archive\n", 100))
			},
			status: 400, contains: []string{"imported/cp1", "not a tar archive"},
		},
		{
			name: "checkpoints of an id with neither container nor checkpoint",
			ids:  []string{"ghost"},
			do: func(t *testing.T) (int, string) {
				// One that has checkpoints but no container still lists
				// them, and a container without any answers [].
				if code, body := d.call(t, "PUT", "/containers/ghost/checkpoint/kept/archive", string(archive.full)); code != 201 {
					t.Fatalf("import: %d %s", code, body)
				}
				if code, body := d.call(t, "GET", "/containers/ghost/checkpoint", ""); code != 200 || !strings.Contains(body, `"kept"`) {
					t.Errorf("checkpoints of an id with one but no container: %d %s", code, body)
				}
				if code, body := d.call(t, "DELETE", "/containers/ghost/checkpoint/kept", ""); code != 204 {
					t.Fatalf("delete: %d %s", code, body)
				}
				if code, body := d.call(t, "GET", "/containers/victim/checkpoint", ""); code != 200 || strings.TrimSpace(body) != "[]" {
					t.Errorf("checkpoints of a container without any: %d %s", code, body)
				}
				return d.call(t, "GET", "/containers/ghost/checkpoint", "")
			},
			status: 404, contains: []string{`"ghost"`},
		},
		{
			name: "a second daemon on the same --state",
			do: func(t *testing.T) (int, string) {
				return d.second(t, "--state", filepath.Join(d.dir, "state"))
			},
			status: 1, contains: []string{"state dir " + filepath.Join(d.dir, "state"), "in use by another troupe daemon", fmt.Sprintf("pid %d", d.cmd.Process.Pid)},
		},
		{
			name: "a second daemon on the same --root",
			do: func(t *testing.T) (int, string) {
				return d.second(t, "--root", filepath.Join(d.dir, "root"))
			},
			status: 1, contains: []string{"root dir " + filepath.Join(d.dir, "root"), "in use by another troupe daemon"},
		},
		{
			name: "a second daemon on the same --cgroup-parent",
			do: func(t *testing.T) (int, string) {
				return d.second(t, "--cgroup-parent", d.cgroup)
			},
			status: 1, contains: []string{"cgroup parent " + d.cgroup, "in use by another troupe daemon", fmt.Sprintf("pid %d", d.cmd.Process.Pid)},
		},
		{
			name: "a second daemon with a cgroup parent inside this one's",
			do: func(t *testing.T) (int, string) {
				return d.second(t, "--cgroup-parent", d.cgroup+"/victim")
			},
			status: 1, contains: []string{"cgroup " + d.cgroup, "in use by another troupe daemon"},
		},
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t0 := time.Now()
			code, body := r.do(t)
			msg := body // a daemon's output
			if code != r.status {
				t.Errorf("answered %d %s; want %d", code, body, r.status)
			} else if r.status >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("answer %q is not {\"error\": ...}", body)
				}
				msg = e.Error
			}
			for _, want := range r.contains {
				if !strings.Contains(msg, want) {
					t.Errorf("the answer does not name %q: %s", want, msg)
				}
			}
			t.Logf("%d in %v: %s", code, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(msg))
			d.assertNoTrace(t, r.ids, baseline)
			d.startsAtOnce(t, fmt.Sprintf("probe%d", i), b.sleeper)
			if s := d.status(t, "victim"); s != "running" {
				t.Fatalf("the victim is %q after the row", s)
			}
		})
	}
}

// TestDaemonLocksGoWithTheDaemon kills a daemon with SIGKILL: the next one
// on the same directories and cgroup parent starts, as it would after a
// crash (the kernel drops a dead process's locks).
func TestDaemonLocksGoWithTheDaemon(t *testing.T) {
	d := startDaemon(t)
	d.crash(t)
	d.launch(t)
	if code, body := d.call(t, "GET", "/healthz", ""); code != 200 {
		t.Fatalf("the daemon after the crash: %d %s", code, body)
	}
}

// bundles makes the rows' bundles in the daemon's directory, all on one
// shared busybox rootfs.
type bundles struct {
	t       *testing.T
	d       *daemon
	rootfs  string
	sleeper string // a bundle that sleeps
	spec    []byte // its config.json
}

func newBundles(t *testing.T, d *daemon) *bundles {
	t.Helper()
	b := &bundles{t: t, d: d}
	b.sleeper = filepath.Join(d.dir, "bundles", "sleeper")
	if out, err := exec.Command(d.bin, "bundle", b.sleeper, "--", "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	b.rootfs = filepath.Join(b.sleeper, "rootfs")
	var err error
	if b.spec, err = os.ReadFile(filepath.Join(b.sleeper, "config.json")); err != nil {
		t.Fatal(err)
	}
	return b
}

// make writes bundle name running args on the shared rootfs.
func (b *bundles) make(name string, args ...string) string {
	return b.edit(name, func(s map[string]any) {
		a := make([]any, len(args))
		for i, arg := range args {
			a[i] = arg
		}
		s["process"].(map[string]any)["args"] = a
	})
}

// edit writes bundle name: the sleeper's spec changed by change, on the
// shared rootfs.
func (b *bundles) edit(name string, change func(spec map[string]any)) string {
	b.t.Helper()
	var spec map[string]any
	if err := json.Unmarshal(b.spec, &spec); err != nil {
		b.t.Fatal(err)
	}
	spec["root"].(map[string]any)["path"] = b.rootfs
	change(spec)
	data, err := json.Marshal(spec)
	if err != nil {
		b.t.Fatal(err)
	}
	dir := filepath.Join(b.d.dir, "bundles", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return dir
}

// fifo writes bundle name whose config.json is a FIFO nobody writes to.
func (b *bundles) fifo(name string) string {
	b.t.Helper()
	dir := filepath.Join(b.d.dir, "bundles", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		b.t.Fatal(err)
	}
	// A daemon that opened it blocking would wait for a writer for ever:
	// be one, so that the test's end does not wait with it. Opening is
	// enough: a reader blocked in open wakes when a writer comes, even one
	// gone again, and then reads the end of the file.
	b.t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	return dir
}

// symlinkedRootfs writes bundle name whose rootfs is a symlink to the
// shared one.
func (b *bundles) symlinkedRootfs(name string) string {
	b.t.Helper()
	dir := filepath.Join(b.d.dir, "bundles", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Symlink(b.rootfs, filepath.Join(dir, "rootfs")); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b.spec, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return dir
}

// start is a row's request: POST /containers/id of bundle.
func (d *daemon) start(id, bundle string) func(t *testing.T) (int, string) {
	return func(t *testing.T) (int, string) {
		return d.call(t, "POST", "/containers/"+id, `{"bundlePath": "`+bundle+`"}`)
	}
}

// callWithin is call with a deadline of its own: a request that hangs is an
// error, and does not hold the test.
func (d *daemon) callWithin(t *testing.T, timeout time.Duration, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, method, "http://"+d.tcp+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		return 0, fmt.Sprintf("no answer within %v: %v", timeout, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// concurrently runs n requests at once; each must get the answer of the
// first, which it returns.
func concurrently(t *testing.T, n int, do func(i int) (int, string)) (int, string) {
	t.Helper()
	codes, bodies := make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = do(i)
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if codes[i] != codes[0] {
			t.Errorf("request %d answered %d %s; the first %d %s", i, codes[i], bodies[i], codes[0], bodies[0])
		}
	}
	return codes[0], bodies[0]
}

// stalledBodies opens n connections, each sending a start whose body stops
// after 14 of its 100 bytes. Each must be answered and closed well within
// 30 s. With n the daemon's --max-connections, a request on a new
// connection meanwhile must wait until they are cut, and then be served.
func (d *daemon) stalledBodies(t *testing.T, n int) (int, string) {
	t.Helper()
	// Idle connections would hold slots too; the daemon notices at once
	// that they are closed.
	e2eClient.CloseIdleConnections()
	nethttp.DefaultTransport.(*nethttp.Transport).CloseIdleConnections() // e2eClient's, below its token
	testutil.EventuallyWithin(t, 10*time.Second, "the daemon to close the idle connections", func() bool { return d.tcpConns(t) == 0 })
	token, _, err := e2eToken()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	answers := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", d.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /containers/slow HTTP/1.1\r\nHost: troupe\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"bundlePath\":", token)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
			resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers[i] = "no answer: " + err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// And then the daemon closes the connection.
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("connection %d stays open after its answer (%v)", i, err)
			}
			answers[i] = strconv.Itoa(resp.StatusCode) + " " + string(body)
			if took := time.Since(t0); took > 30*time.Second {
				t.Errorf("connection %d was answered after %v", i, took)
			}
		}()
	}
	// Every slot is taken once the daemon has accepted them all: a new
	// connection then waits in the backlog.
	testutil.EventuallyWithin(t, 10*time.Second, fmt.Sprintf("the daemon to accept the %d stalled connections", n), func() bool { return d.tcpConns(t) == n })
	client := &nethttp.Client{Timeout: time.Minute, Transport: bearer{&nethttp.Transport{}}}
	code := 0
	if resp, err := client.Get("http://" + d.tcp + "/healthz"); err != nil {
		t.Errorf("GET /healthz while the slots were taken: %v", err)
	} else {
		code = resp.StatusCode
		resp.Body.Close()
	}
	waited := time.Since(t0)
	if code != 200 || waited < 5*time.Second {
		t.Errorf("GET /healthz with %d connections open: %d after %v; want 200 once they are cut", n, code, waited)
	}
	wg.Wait()
	for i, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("connection %d: %s; the first: %s", i+1, a, answers[0])
		}
	}
	first, rest, _ := strings.Cut(answers[0], " ")
	status, _ := strconv.Atoi(first)
	return status, rest
}

// tcpConns counts the TCP connections on its port that the daemon has
// accepted and not yet closed: sockets among its open files, other than the
// listener. The kernel completes a handshake before the accept, so a
// connection in the backlog does not count.
func (d *daemon) tcpConns(t *testing.T) int {
	t.Helper()
	_, portText, err := net.SplitHostPort(d.tcp)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	pid := d.cmd.Process.Pid
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatalf("the daemon's open files: %v", err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		link, _ := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			sockets[strings.TrimSuffix(inode, "]")] = true
		}
	}
	// The daemon listens on IPv4 loopback. A line of /proc/PID/net/tcp:
	// "sl local_address rem_address st ... inode", addresses as hex
	// IP:port, st 0A for a listener.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] == "0A" || !sockets[f[9]] {
			continue
		}
		_, local, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(local, 16, 16); err == nil && p == port {
			n++
		}
	}
	return n
}

// second runs another daemon, with directories and a cgroup parent of its
// own but for those flags names (of this one's, or inside them), and returns
// its exit code and output. It listens on a socket of its own.
func (d *daemon) second(t *testing.T, flags ...string) (int, string) {
	t.Helper()
	box := troupetest.NewSandbox(t, "e2e-second")
	dir, cgroup := box.Dir, box.CgroupParent
	args := map[string]string{"--root": filepath.Join(dir, "root"), "--state": filepath.Join(dir, "state"), "--cgroup-parent": cgroup}
	for i := 0; i+1 < len(flags); i += 2 {
		args[flags[i]] = flags[i+1]
	}
	argv := []string{"daemon", "--listen", "unix://" + filepath.Join(dir, "troupe.sock")}
	for _, f := range slices.Sorted(maps.Keys(args)) {
		argv = append(argv, f, args[f])
	}
	// A daemon that serves never exits by itself: the deadline ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(cmd.Process.Pid)
	err := cmd.Wait()
	var exit *exec.ExitError
	if ctx.Err() != nil || !errors.As(err, &exit) {
		t.Errorf("the second daemon ran until killed (%v); its output:\n%s", err, out.String())
		return -1, out.String()
	}
	return exit.ExitCode(), out.String()
}

// cgroupDirs lists the cgroups below the daemon's parent, in every
// hierarchy.
func (d *daemon) cgroupDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup, "*"))
	for _, p := range matches {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// assertNoTrace checks that nothing of ids is left (state dir, log,
// checkpoint dir), that no cgroup was added since baseline, that no
// process was left in the victim, and that nothing stays mounted.
func (d *daemon) assertNoTrace(t *testing.T, ids, baseline []string) {
	t.Helper()
	for _, id := range ids {
		for _, p := range []string{
			filepath.Join(d.dir, "state", "containers", id),
			filepath.Join(d.dir, "state", "logs", id+".log"),
			filepath.Join(d.dir, "root", "checkpoints", id),
		} {
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("left behind: %s", p)
			}
		}
		if logs, _ := filepath.Glob(filepath.Join(d.dir, "state", "logs", id+".log*")); len(logs) > 0 {
			t.Errorf("logs left behind: %v", logs)
		}
	}
	if now := d.cgroupDirs(t); !slices.Equal(now, baseline) {
		t.Errorf("cgroups now %v; before %v", now, baseline)
	}
	// A process a row exec'd into the victim may still be on its way out;
	// one that stays is a leak.
	victimProcs := func() ([]string, error) {
		procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", d.cgroup, "victim", "cgroup.procs"))
		return strings.Fields(string(procs)), err
	}
	testutil.Within(5*time.Second, func() bool { p, err := victimProcs(); return err == nil && len(p) == 1 })
	if procs, err := victimProcs(); err != nil || len(procs) != 1 {
		t.Errorf("the victim has processes %v (%v), want its init alone", procs, err)
	}
	data, _ := os.ReadFile("/proc/thread-self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], d.dir+"/") {
			t.Errorf("mount left: %s", f[4])
		}
	}
}

// startsAtOnce checks that the admission of starts holds no slot: a start
// of a good bundle is answered in seconds, and its delete too.
func (d *daemon) startsAtOnce(t *testing.T, id, bundle string) {
	t.Helper()
	t0 := time.Now()
	if code, body := d.callWithin(t, 15*time.Second, "POST", "/containers/"+id, `{"bundlePath": "`+bundle+`"}`); code != 201 {
		t.Fatalf("a normal start after the row: %d %s", code, body)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a normal start after the row took %v", took)
	}
	if code, body := d.callWithin(t, 15*time.Second, "DELETE", "/containers/"+id+"?force=true", ""); code != 204 {
		t.Fatalf("delete %s: %d %s", id, code, body)
	}
}

// checkpointArchive is an archive as GET .../archive makes it, and the
// same cut where its last entry ends (no end marker).
type checkpointArchive struct {
	full, unterminated []byte
}

// testArchive makes a checkpoint archive without CRIU: import reads files,
// it does not restore them.
func testArchive(t *testing.T) checkpointArchive {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	meta := []byte(`{"name": "cp1", "container": "elsewhere", "bundlePath": "/nowhere", "created": "2026-12-01T00:00:00Z"}`)
	pages := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for _, f := range []struct {
		name string
		data []byte
	}{{"checkpoint.json", meta}, {"images/pages-1.img", pages}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	unterminated := slices.Clone(buf.Bytes())
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return checkpointArchive{full: buf.Bytes(), unterminated: unterminated}
}
