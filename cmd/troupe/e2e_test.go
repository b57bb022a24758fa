package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// e2eClient makes every request of these tests, with the daemons' token:
// it gives up after two minutes, so that a daemon that hangs (in CRIU, say)
// fails the test instead of holding the test binary until go test's -timeout.
var e2eClient = &nethttp.Client{Timeout: 2 * time.Minute, Transport: bearer{nethttp.DefaultTransport}}

// The daemons of these tests serve TCP as the README says to: with a token
// (--token-file). They share one, as daemons that migrate containers
// between them do.
var (
	tokenOnce sync.Once
	tokenPath string
	tokenErr  error
	token     string
)

// e2eToken returns the daemons' token and the file that holds it, made on
// first use in the run's temporary directory, readable by root only.
func e2eToken() (value, path string, err error) {
	tokenOnce.Do(func() {
		var dir string
		if dir, tokenErr = os.MkdirTemp("", "troupe-e2e-token-"); tokenErr != nil {
			return
		}
		token = fmt.Sprintf("e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
		tokenPath = filepath.Join(dir, "token")
		tokenErr = os.WriteFile(tokenPath, []byte(token+"\n"), 0o600)
	})
	return token, tokenPath, tokenErr
}

// bearer adds the daemons' token to every request it carries.
type bearer struct{ next nethttp.RoundTripper }

func (b bearer) RoundTrip(req *nethttp.Request) (*nethttp.Response, error) {
	token, _, err := e2eToken()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return b.next.RoundTrip(req)
}

// command is exec.Command for the CLI, with the daemons' token, killed after
// two minutes: the CLI waits for the daemon, and a daemon that hangs must
// fail the test.
func command(t *testing.T, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second // for output held by what it left running
	if _, path, err := e2eToken(); err == nil {
		cmd.Env = append(os.Environ(), envTokenFile+"="+path)
	}
	return cmd
}

// daemon is a troupe daemon built from this tree and started on throwaway
// directories, a loopback port and a private cgroup parent.
type daemon struct {
	bin, dir, sock, tcp, cgroup string
	tokenFile                   string   // the daemon's --token-file, if any
	args                        []string // more daemon flags
	cmd                         *exec.Cmd
}

// startDaemon builds the daemon and starts it with args added to its flags
// and the tests' token (e2eToken).
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	_, path, err := e2eToken()
	if err != nil {
		t.Fatal(err)
	}
	return startDaemonWith(t, path, args...)
}

// startDaemonWith is startDaemon with the --token-file of the caller's
// choice ("" for none).
func startDaemonWith(t *testing.T, tokenFile string, args ...string) *daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon starts real containers")
	}
	// Removed, after killing what is left under the cgroup parent, once
	// the daemon has stopped (d.stop, registered later, runs first).
	box := troupetest.NewSandbox(t, "e2e")
	dir := box.Dir
	d := &daemon{dir: dir, bin: troupeBinary(t), sock: filepath.Join(dir, "run", "troupe.sock"),
		cgroup: box.CgroupParent, tokenFile: tokenFile, args: args}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.tcp = l.Addr().String()
	l.Close()
	d.launch(t)
	t.Cleanup(func() { d.stop(t) })
	return d
}

// launch starts the daemon process and waits until it answers.
func (d *daemon) launch(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(d.dir, "daemon.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	args := []string{"daemon", "--root", filepath.Join(d.dir, "root"), "--state", filepath.Join(d.dir, "state"),
		"--listen", "unix://" + d.sock, "--listen", "tcp://" + d.tcp, "--cgroup-parent", d.cgroup, "--log-level", "debug"}
	if d.tokenFile != "" {
		args = append(args, "--token-file", d.tokenFile)
	}
	d.cmd = exec.Command(d.bin, append(args, d.args...)...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(d.cmd.Process.Pid)
	// Up is when it answers and its CRIU self-test has a verdict: tests
	// that checkpoint would get 503 "still being tested" before.
	up := testutil.Within(20*time.Second, func() bool {
		var h struct {
			Criu struct{ Status string } `json:"criu"`
		}
		resp, err := e2eClient.Get("http://" + d.tcp + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Criu.Status != "checking"
	})
	if !up {
		t.Fatalf("the daemon did not come up within 20s; its log:\n%s", d.log())
	}
}

// terminate stops the daemon with SIGTERM, as an operator would, and
// waits for it to exit.
func (d *daemon) terminate(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the daemon exited with %v on SIGTERM; its log:\n%s", err, d.log())
		}
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		t.Errorf("the daemon did not stop on SIGTERM")
	}
}

func (d *daemon) log() string {
	data, _ := os.ReadFile(filepath.Join(d.dir, "daemon.log"))
	return string(data)
}

// stop deletes what is left through the API and stops the daemon by its
// pid; the Sandbox's cleanup then kills what is left under its cgroup
// parent and removes it.
func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState == nil {
		var st struct {
			Containers []struct{ ID string } `json:"containers"`
		}
		if resp, err := e2eClient.Get("http://" + d.tcp + "/state"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		for _, c := range st.Containers {
			req, _ := nethttp.NewRequest("DELETE", "http://"+d.tcp+"/containers/"+c.ID+"?force=true", nil)
			if resp, err := e2eClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		d.terminate(t)
	}
}

// shell is one bash session: variables set by one command are seen by the
// next, as when a person pastes the README's commands one by one.
type shell struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	pipe *os.File // its stdout, read with a deadline
	out  *bufio.Reader
}

func newShell(t *testing.T, dir string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// bash ends at the end of its input, once its command has.
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		r.Close()
	})
	return &shell{cmd: cmd, in: in, pipe: r, out: bufio.NewReader(r)}
}

const endMarker = "@@@troupe-e2e-end"

// countsFromOne reports whether out is the README counter's log: 1, 2 and
// on, a line each, however far it has got (on a loaded machine two lines
// may be all there is).
func countsFromOne(out string) bool {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if l != strconv.Itoa(i+1) {
			return false
		}
	}
	return len(lines) >= 2
}

// run runs one command line and returns its output and exit code.
func (s *shell) run(t *testing.T, line string) (string, int) {
	t.Helper()
	if _, err := fmt.Fprintf(s.in, "%s\nprintf '\\n%s %%d\\n' $?\n", line, endMarker); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = s.pipe.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for {
		l, err := s.out.ReadString('\n')
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("shell: %s did not finish within 2m (output so far %q)", line, out.String())
		}
		if err != nil {
			t.Fatalf("shell: %v (output so far %q)", err, out.String())
		}
		if rest, ok := strings.CutPrefix(l, endMarker+" "); ok {
			var code int
			fmt.Sscanf(rest, "%d", &code)
			// The marker starts on a line of its own: what it added, and
			// the command's own final newline, are not output.
			return strings.TrimRight(out.String(), "\n"), code
		}
		out.WriteString(l)
	}
}

// readmeCommands returns the command lines of the README's api-examples
// block, in order.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "<!-- api-examples")
	if !ok {
		t.Fatal("README.md has no api-examples block")
	}
	block, _, _ = strings.Cut(block, "<!-- /api-examples -->")
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "```") || strings.HasPrefix(l, "<!--") || strings.HasSuffix(l, "-->") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// container is the part of a Container answer the test looks at.
type container struct {
	ID    string `json:"id"`
	Warm  bool   `json:"warm"`
	State struct {
		Status     string `json:"status"`
		ExitStatus *int   `json:"exitStatus"`
	} `json:"state"`
	Processes []struct {
		Pid  int      `json:"pid"`
		Args []string `json:"args"`
		User struct {
			UID int `json:"uid"`
		} `json:"user"`
	} `json:"processes"`
}

// stateAnswer, processAnswer and statsAnswer are the parts of those answers
// the test looks at.
type stateAnswer struct {
	Containers []container `json:"containers"`
	Machine    struct {
		CPUs   int    `json:"cpus"`
		Memory uint64 `json:"memory"`
	} `json:"machine"`
}

type processAnswer struct {
	Pid  int `json:"pid"`
	User struct {
		UID int `json:"uid"`
	} `json:"user"`
}

type statsAnswer struct {
	CPU         uint64 `json:"cpuUsageNanos"`
	MemoryLimit uint64 `json:"memoryLimit"`
	PidsLimit   uint64 `json:"pidsLimit"`
	Pids        uint64 `json:"pids"`
}

func decodeJSON[T any](t *testing.T, line, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s\nanswered %q: %v", line, out, err)
	}
	return v
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestReadmeExamples runs the README's curl examples as written (only the
// socket path, port, demo directory, binary path and registry are this
// test's own)
// against a real daemon, and checks each answer.
func TestReadmeExamples(t *testing.T) {
	d := startDaemon(t)
	lines := readmeCommands(t)
	if len(lines) < 15 {
		t.Fatalf("only %d commands in the README's examples", len(lines))
	}
	token, tokenFile, err := e2eToken()
	if err != nil {
		t.Fatal(err)
	}
	// The image examples pull from a registry on 127.0.0.1:5000: this
	// test's own, holding busybox as busybox:1.
	registry := strings.TrimSuffix(pushBusybox(t, "busybox:1"), "/busybox:1")
	replacer := strings.NewReplacer(
		"127.0.0.1:5000", registry,
		"/run/troupe/troupe.sock", d.sock,
		"127.0.0.1:8888", d.tcp,
		"/etc/troupe/token", tokenFile,
		"/var/lib/troupe-demo", filepath.Join(d.dir, "demo"),
		"bin/troupe", d.bin,
	)
	sh := newShell(t, d.dir)
	// The test's own requests, beside the README's.
	curl := "curl -s -H 'Authorization: Bearer " + token + "' "
	get := func() container {
		out, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/counter")
		return decodeJSON[container](t, "GET", out)
	}
	logLen := func() int {
		out, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/counter/logs")
		return len(out)
	}
	checked := 0
	imageRemovals := 0
	var pulled string // the digest of the image the README pulls
	for _, readmeLine := range lines {
		line := replacer.Replace(readmeLine)
		out, code := sh.run(t, line)
		wantCode := 0
		if strings.Contains(line, "--max-time") {
			wantCode = 28 // curl's "timed out": the event stream stays open
		}
		if code != wantCode {
			t.Fatalf("%s\nexit code %d, output %q\ndaemon log:\n%s", readmeLine, code, out, d.log())
		}
		checked++
		switch {
		case strings.Contains(line, "-X POST") && strings.Contains(line, "/images -d"):
			// The stream: progress lines of the one layer, the image last.
			outLines := strings.Split(out, "\n")
			var last struct {
				Image *struct {
					Digest string   `json:"digest"`
					Names  []string `json:"names"`
				} `json:"image"`
			}
			if err := json.Unmarshal([]byte(outLines[len(outLines)-1]), &last); err != nil || last.Image == nil ||
				len(last.Image.Names) != 1 || last.Image.Names[0] != registry+"/busybox:1" || len(outLines) < 2 {
				t.Errorf("%s: %q; want progress lines, then the image", readmeLine, out)
			} else {
				pulled = last.Image.Digest
			}
			for _, l := range outLines[:len(outLines)-1] {
				var p struct {
					Layer       string
					Total, Done int64
				}
				if err := json.Unmarshal([]byte(l), &p); err != nil || !strings.HasPrefix(p.Layer, "sha256:") || p.Done > p.Total {
					t.Errorf("%s: progress line %q", readmeLine, l)
				}
			}
		case strings.HasSuffix(line, "/images"):
			var list struct {
				Images []struct{ Names []string } `json:"images"`
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Images) != 1 || len(list.Images[0].Names) != 1 {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "?archive=oci"):
			if out != "" {
				t.Errorf("%s: %q; want it all in the file", readmeLine, out)
			}
			checkImageArchive(t, readmeLine, filepath.Join(d.dir, "demo", "busybox.tar"), pulled, registry+"/busybox:1")
		case strings.Contains(line, "/images/import"):
			var list struct {
				Images []struct {
					Digest string   `json:"digest"`
					Names  []string `json:"names"`
				} `json:"images"`
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Images) != 1 || list.Images[0].Digest != pulled ||
				strings.Join(list.Images[0].Names, ",") != registry+"/busybox:1" {
				t.Errorf("%s: %s; want %s named %s/busybox:1", readmeLine, out, pulled, registry)
			}
			// Whole again: the removal had taken its layer.
			if layers, _ := os.ReadDir(filepath.Join(d.dir, "root", "images", "layers", "sha256")); len(layers) != 1 {
				t.Errorf("%s: %d layers unpacked, want busybox's one", readmeLine, len(layers))
			}
		case strings.Contains(line, "-X DELETE") && strings.Contains(line, "/images/"):
			imageRemovals++
			if imageRemovals == 1 {
				var e struct{ Code string }
				if err := json.Unmarshal([]byte(out), &e); err != nil || e.Code != "failed_precondition" {
					t.Errorf("%s: %s; want a refusal while web runs from it", readmeLine, out)
				}
				break
			}
			var img struct{ Digest string }
			if err := json.Unmarshal([]byte(out), &img); err != nil || !strings.HasPrefix(img.Digest, "sha256:") {
				t.Errorf("%s: %s; want the image removed", readmeLine, out)
			}
			if roots, _ := os.ReadDir(filepath.Join(d.dir, "root", "images", "rootfs")); len(roots) != 0 {
				t.Errorf("roots left in the image store: %v", roots)
			}
		case strings.Contains(line, "/images/"):
			var img struct {
				Digest string
				Names  []string
			}
			if err := json.Unmarshal([]byte(out), &img); err != nil || !strings.HasPrefix(img.Digest, "sha256:") || len(img.Names) != 1 {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "-X POST") && strings.Contains(line, `"join"`):
			app := decodeJSON[container](t, readmeLine, out)
			webOut, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/web")
			web := decodeJSON[container](t, "GET web", webOut)
			if app.ID != "web-app" || app.State.Status != "running" || len(app.Processes) != 1 || len(web.Processes) == 0 {
				t.Errorf("%s: %s; want web-app running beside web", readmeLine, out)
				break
			}
			for _, ns := range []string{"net", "ipc", "uts"} {
				mine, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", app.Processes[0].Pid, ns))
				its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", web.Processes[0].Pid, ns))
				if err1 != nil || err2 != nil || mine != its {
					t.Errorf("%s: %s namespace %s (%v), web's %s (%v)", readmeLine, ns, mine, err1, its, err2)
				}
			}
		case strings.Contains(line, "-X DELETE") && strings.Contains(line, "/containers/web-app"):
			if out != "" {
				t.Errorf("%s: %q", readmeLine, out)
			}
			if out, _ := sh.run(t, curl+"-o /dev/null -w '%{http_code}' http://"+d.tcp+"/containers/web-app"); out != "404" {
				t.Errorf("after delete of web-app: %s, want 404", out)
			}
		case strings.Contains(line, "-X POST") && strings.Contains(line, `"image"`):
			var c struct {
				container
				Image string `json:"image"`
			}
			if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID != "web" || c.State.Status != "running" || !strings.HasPrefix(c.Image, "sha256:") {
				t.Errorf("%s: %s", readmeLine, out)
			}
			testutil.Eventually(t, "the container from the image to greet", func() bool {
				out, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/web/logs")
				return out == "hello from an image"
			})
		case strings.Contains(line, "-X DELETE") && strings.Contains(line, "/containers/web"):
			if out != "" {
				t.Errorf("%s: %q", readmeLine, out)
			}
			if out, _ := sh.run(t, curl+"-o /dev/null -w '%{http_code}' http://"+d.tcp+"/containers/web"); out != "404" {
				t.Errorf("after delete of web: %s, want 404", out)
			}
		case strings.Contains(line, "/archive") && strings.Contains(line, "-o "):
			fi, err := os.Stat(filepath.Join(d.dir, "demo", "cp1.tar"))
			if err != nil || fi.Size() < 1024 {
				t.Errorf("%s: exported %v, %v", readmeLine, fi, err)
			}
		case strings.Contains(line, "/archive") && strings.Contains(line, "-X PUT"):
			var cp struct{ Name, Container string }
			if err := json.Unmarshal([]byte(out), &cp); err != nil || cp.Name != "moved" || cp.Container != "counter" {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "-X POST") && strings.Contains(line, "/checkpoint/"):
			var cp struct{ Name, Container string }
			if err := json.Unmarshal([]byte(out), &cp); err != nil || cp.Name != "cp1" || cp.Container != "counter" {
				t.Errorf("%s: %s", readmeLine, out)
			}
			if c := get(); c.State.Status != "running" {
				t.Errorf("after a checkpoint without exit the container is %s", c.State.Status)
			}
		case strings.Contains(line, "-X PUT") && strings.Contains(line, "/pools/"):
			var p struct {
				Name string
				Size int
			}
			if err := json.Unmarshal([]byte(out), &p); err != nil || p.Name != "counters" || p.Size != 2 {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "until ") && strings.Contains(line, "/pools/"):
			// Its exit code is the check: the pool filled.
		case strings.Contains(line, "-X POST") && strings.Contains(line, "/containers/warm"):
			c := decodeJSON[container](t, readmeLine, out)
			if !c.Warm || c.State.Status != "running" || len(c.Processes) != 1 || !alive(c.Processes[0].Pid) {
				t.Errorf("%s: %s; want a warm running container", readmeLine, out)
			}
		case strings.HasSuffix(line, "/pools"):
			var list []struct {
				Name string
				Size int
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "counters" {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "-X DELETE") && strings.Contains(line, "/pools/"):
			if out != "" {
				t.Errorf("%s: %q", readmeLine, out)
			}
			if out, _ := sh.run(t, curl+"-o /dev/null -w '%{http_code}' http://"+d.tcp+"/pools/counters"); out != "404" {
				t.Errorf("after delete of the pool: %s, want 404", out)
			}
			if dirs, _ := filepath.Glob(filepath.Join(d.dir, "state", "containers", "+warm-*")); len(dirs) != 0 {
				t.Errorf("prepared containers left after the pool's delete: %v", dirs)
			}
		case strings.Contains(line, "-X DELETE") && strings.Contains(line, "/checkpoint/"):
			if out != "" {
				t.Errorf("%s: %q", readmeLine, out)
			}
		case strings.HasSuffix(line, "/checkpoint"):
			var list []struct{ Name string }
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "cp1" {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, `"checkpoint": "counter/cp1"`):
			c := decodeJSON[container](t, readmeLine, out)
			if c.ID != "clone" || c.State.Status != "running" || len(c.Processes) != 1 || !alive(c.Processes[0].Pid) {
				t.Errorf("%s: %s", readmeLine, out)
			}
			// The clone's own log starts where the original was, not at 1.
			testutil.Eventually(t, "the clone to print", func() bool {
				out, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/clone/logs")
				return out != ""
			})
			first, _ := sh.run(t, curl+"http://"+d.tcp+"/containers/clone/logs | head -1")
			if n, err := strconv.Atoi(first); err != nil || n < 2 {
				t.Errorf("the clone's log starts with %q; want the count going on", first)
			}
		case strings.Contains(line, "-X DELETE"):
			if out != "" {
				t.Errorf("%s: %q", readmeLine, out)
			}
			id := "counter"
			for _, other := range []string{"clone", "warm"} {
				if strings.Contains(line, "/containers/"+other) {
					id = other
				}
			}
			if out, _ := sh.run(t, curl+"-o /dev/null -w '%{http_code}' http://"+d.tcp+"/containers/"+id); out != "404" {
				t.Errorf("after delete of %s: %s, want 404", id, out)
			}
		case strings.Contains(line, " bundle "):
			if _, err := os.Stat(filepath.Join(out, "config.json")); err != nil {
				t.Errorf("%s: no bundle: %v", readmeLine, err)
			}
		case strings.Contains(line, "-X POST") && strings.Contains(line, "bundlePath"):
			c := decodeJSON[container](t, readmeLine, out)
			if c.State.Status != "running" || len(c.Processes) != 1 || !alive(c.Processes[0].Pid) {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.HasSuffix(line, "/state"):
			st := decodeJSON[stateAnswer](t, readmeLine, out)
			if len(st.Containers) != 1 || len(st.Containers[0].Processes) != 1 || !alive(st.Containers[0].Processes[0].Pid) {
				t.Errorf("%s: containers %+v; want counter with its init's live host pid", readmeLine, st.Containers)
			}
			if st.Machine.CPUs < 1 || st.Machine.Memory < 1<<20 {
				t.Errorf("%s: machine %+v", readmeLine, st.Machine)
			}
		case strings.Contains(line, "-X PUT") && strings.Contains(line, "/processes"):
			p := decodeJSON[processAnswer](t, readmeLine, out)
			if !alive(p.Pid) || p.User.UID != 1000 {
				t.Errorf("%s: %s", readmeLine, out)
			}
			if status := readStatusUID(p.Pid); status != "1000" {
				t.Errorf("the exec'd process runs as host uid %s, want 1000", status)
			}
		case strings.Contains(line, "/process/$PID"):
			if out != "" {
				t.Errorf("%s: %q, want 204 and no body", readmeLine, out)
			}
			testutil.Eventually(t, "the signalled process to leave the list", func() bool { return len(get().Processes) == 1 })
		case strings.Contains(line, `"status": "paused"`):
			if c := decodeJSON[container](t, readmeLine, out); c.State.Status != "paused" {
				t.Errorf("%s: %s", readmeLine, out)
			}
			// The counter does not move while paused. That nothing
			// happens can only be watched for a while: the sleep is the
			// observation (two and a half of the counter's seconds), not
			// an ordering.
			before := logLen()
			time.Sleep(2500 * time.Millisecond)
			if after := logLen(); after != before {
				t.Errorf("the counter moved while paused: %d -> %d bytes of log", before, after)
			}
		case strings.Contains(line, `"status": "running"`):
			if c := decodeJSON[container](t, readmeLine, out); c.State.Status != "running" {
				t.Errorf("%s: %s", readmeLine, out)
			}
			before := logLen()
			testutil.Eventually(t, "the counter to move again", func() bool { return logLen() > before })
		case strings.Contains(line, `"resources"`):
			if c := decodeJSON[container](t, readmeLine, out); c.State.Status != "running" {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.HasSuffix(line, "/stats"):
			s := decodeJSON[statsAnswer](t, readmeLine, out)
			if s.MemoryLimit != 67108864 || s.PidsLimit != 64 || s.CPU == 0 || s.Pids == 0 {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, "logs?follow=true"):
			if !countsFromOne(out) {
				t.Errorf("%s: %q, want the count", readmeLine, out)
			}
		case strings.Contains(line, "text/event-stream"):
			if !strings.Contains(out, "event: start") || !strings.Contains(out, "id: 1\n") {
				t.Errorf("%s: %q, want server-sent events", readmeLine, out)
			}
		case strings.HasSuffix(line, "/logs"):
			if !countsFromOne(out) {
				t.Errorf("%s: %q, want the count", readmeLine, out)
			}
		case strings.Contains(line, "/logs?tail=2&timestamps=true"):
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range got {
				stamp, count, _ := strings.Cut(l, " ")
				if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || count == "" {
					t.Errorf("%s: line %q, want a time and the count", readmeLine, l)
				}
			}
			if len(got) != 2 {
				t.Errorf("%s: %q, want 2 lines", readmeLine, out)
			}
		case strings.Contains(line, `"singal"`):
			if !strings.Contains(out, `unknown field \"singal\"`) {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.Contains(line, `"signal": 9`):
			decodeJSON[container](t, readmeLine, out)
			// Killing is asynchronous; the next command reads the result.
			testutil.Eventually(t, "the container to stop", func() bool { return get().State.Status == "stopped" })
		case strings.HasSuffix(line, "/containers/counter"):
			c := decodeJSON[container](t, readmeLine, out)
			if c.ID != "counter" {
				t.Errorf("%s: %s", readmeLine, out)
			}
			if c.State.Status == "stopped" && (c.State.ExitStatus == nil || *c.State.ExitStatus != 137 || len(c.Processes) != 0) {
				t.Errorf("%s: %s; want stopped with exit status 137 and no processes", readmeLine, out)
			}
		case strings.Contains(line, "/events"):
			var types []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var e struct{ Type string }
				if json.Unmarshal([]byte(l), &e) == nil && e.Type != "" {
					types = append(types, e.Type)
				}
			}
			want := "start exec process-exit pause resume checkpoint exit"
			if strings.Join(types, " ") != want {
				t.Errorf("%s: events %v, want %s", readmeLine, types, want)
			}
		case strings.HasSuffix(line, "/containers"):
			var list struct {
				Containers []container `json:"containers"`
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Containers) != 1 || list.Containers[0].ID != "counter" {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.HasSuffix(line, "/healthz"):
			if !strings.Contains(out, `"ok"`) {
				t.Errorf("%s: %s", readmeLine, out)
			}
		case strings.HasSuffix(line, "/version"):
			// The daemon is a real build: its runc is the one go.mod
			// requires (a test binary could not tell).
			var v struct{ Runc string }
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.Runc != testutil.Required(t, "github.com/opencontainers/runc") {
				t.Errorf("%s: %s; want runc %s as go.mod requires", readmeLine, out, testutil.Required(t, "github.com/opencontainers/runc"))
			}
		case strings.HasSuffix(line, "/metrics"):
			if !strings.Contains(out, "troupe_http_requests_total") || !strings.Contains(out, "troupe_container_starts_total") {
				t.Errorf("%s: no troupe metrics", readmeLine)
			}
		case strings.HasPrefix(line, "PID="), strings.HasPrefix(line, "AUTH="):
		default:
			checked--
			t.Errorf("README command without a check in this test: %s", readmeLine)
		}
	}
	t.Logf("%d README commands run and checked", checked)
}

// checkImageArchive checks that the file at path is an OCI image layout in
// a tar archive holding the image digest, named name, and every blob its
// manifest names, each its digest.
func checkImageArchive(t *testing.T, line, path, digest, name string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("%s: %v", line, err)
		return
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Errorf("%s: the archive: %v", line, err)
			return
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Errorf("%s: the archive: %s: %v", line, h.Name, err)
			return
		}
	}
	blob := func(d string) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if sum := sha256.Sum256(b); !ok || "sha256:"+hex.EncodeToString(sum[:]) != d {
			t.Errorf("%s: blob %s missing or not its digest", line, d)
		}
		return b
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if _, ok := files["oci-layout"]; !ok || json.Unmarshal(files["index.json"], &index) != nil || len(index.Manifests) != 1 ||
		index.Manifests[0].Digest != digest || index.Manifests[0].Annotations["io.containerd.image.name"] != name {
		t.Errorf("%s: oci-layout and index.json %s; want %s named %s", line, files["index.json"], digest, name)
		return
	}
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(blob(digest), &manifest); err != nil || len(manifest.Layers) == 0 {
		t.Errorf("%s: the manifest: %v", line, err)
		return
	}
	blob(manifest.Config.Digest)
	for _, l := range manifest.Layers {
		blob(l.Digest)
	}
	if want := 2 + 2 + len(manifest.Layers); len(files) != want {
		t.Errorf("%s: %d files in the archive, want %d (oci-layout, index.json, manifest, config, layers)", line, len(files), want)
	}
}

// readStatusUID returns the real uid of pid on the host.
func readStatusUID(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return "?"
}

// TestCLIAgainstDaemon drives a real daemon with the CLI, over its socket.
// daemonModes are the two ways a daemon runs its containers: in the slim
// engine embedded in it (the default), and in its own process.
var daemonModes = []struct {
	name string
	args []string
}{
	{"engine", nil},
	{"in-process", []string{"--engine=false"}},
}

func TestCLIAgainstDaemon(t *testing.T) {
	for _, mode := range daemonModes {
		t.Run(mode.name, func(t *testing.T) { testCLIAgainstDaemon(t, mode.args...) })
	}
}

func testCLIAgainstDaemon(t *testing.T, args ...string) {
	d := startDaemon(t, args...)
	troupe := func(args ...string) (string, error) {
		t.Helper()
		cmd := command(t, d.bin, append([]string{"--address", "unix://" + d.sock}, args...)...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := troupe(args...)
		if err != nil {
			t.Fatalf("troupe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	bundle := must("bundle", filepath.Join(d.dir, "b"), "--", "sleep", "300")
	if out := must("start", "web", bundle); out != "web" {
		t.Errorf("start printed %q", out)
	}
	if out := must("ps"); !strings.Contains(out, "web") || !strings.Contains(out, "running") {
		t.Errorf("ps:\n%s", out)
	}
	pid := must("exec", "-d", "web", "--user", "1000:1000", "--", "sleep", "301")
	if n, err := fmt.Sscanf(pid, "%d", new(int)); n != 1 || err != nil {
		t.Fatalf("exec printed %q, want a pid", pid)
	}
	if out := must("top", "web"); !strings.Contains(out, pid) || !strings.Contains(out, "sleep 301") {
		t.Errorf("top:\n%s", out)
	}
	// A pod: a bundle that names no host joins web's namespaces.
	app, err := busybox.Bundle(filepath.Join(d.dir, "app"), busybox.Options{Args: []string{"sleep", "300"}, NoHostname: true})
	if err != nil {
		t.Fatal(err)
	}
	if out := must("start", "app", app, "--network", "container:web", "--ipc", "container:web", "--uts", "container:web"); out != "app" {
		t.Errorf("start in web's namespaces printed %q", out)
	}
	initOf := func(id string) int {
		c := decodeJSON[container](t, "inspect "+id, must("inspect", id))
		if len(c.Processes) == 0 {
			t.Fatalf("inspect %s: no init", id)
		}
		return c.Processes[0].Pid
	}
	for _, ns := range []string{"net", "ipc", "uts"} {
		mine, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", initOf("app"), ns))
		its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", initOf("web"), ns))
		if err1 != nil || err2 != nil || mine != its {
			t.Errorf("app's %s namespace %s (%v), web's %s (%v)", ns, mine, err1, its, err2)
		}
	}
	must("rm", "-f", "app")
	// A pod whose network namespace a bind mount holds, beside web's IPC
	// namespace: the daemon (and its engine) join the file's.
	pinned := linuxtest.PinNamespaces(t, "pinned")
	must("start", "app", app, "--network", pinned.Network, "--ipc", "container:web")
	var mine, file unix.Stat_t
	if err1, err2 := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", initOf("app")), &mine), unix.Stat(pinned.Network, &file); err1 != nil ||
		err2 != nil || mine.Dev != file.Dev || mine.Ino != file.Ino {
		t.Errorf("app's network namespace %d:%d (%v), %s's %d:%d (%v)", mine.Dev, mine.Ino, err1, pinned.Network, file.Dev, file.Ino, err2)
	}
	must("rm", "-f", "app")
	// Checkpoint, clone from it, list and remove it.
	must("checkpoint", "create", "web", "cp1")
	if out := must("checkpoint", "ls", "web"); !strings.Contains(out, "cp1") {
		t.Errorf("checkpoint ls:\n%s", out)
	}
	if out := must("start", "web2", bundle, "--checkpoint", "web/cp1"); out != "web2" {
		t.Errorf("start from a checkpoint printed %q", out)
	}
	must("rm", "-f", "web2")
	// Export and import through files, as between two machines.
	tarPath := filepath.Join(d.dir, "cp1.tar")
	if out, err := command(t, "sh", "-c", d.bin+" --address unix://"+d.sock+" checkpoint export web cp1 > "+tarPath+
		" && "+d.bin+" --address unix://"+d.sock+" checkpoint import web copy < "+tarPath).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "copy" {
		t.Errorf("checkpoint export | import: %v %q", err, out)
	}
	must("checkpoint", "rm", "web", "copy")
	must("checkpoint", "rm", "web", "cp1")
	if out := must("checkpoint", "ls", "web"); strings.Contains(out, "cp1") {
		t.Errorf("checkpoint ls after rm:\n%s", out)
	}
	must("kill", "web", pid, "-s", "KILL")
	testutil.Eventually(t, "the exec'd process to go", func() bool { return !strings.Contains(must("top", "web"), pid) })
	if out, err := troupe("rm", "web"); err == nil || !strings.Contains(out, "running") {
		t.Errorf("rm of a running container: %v %q; want a refusal naming its state", err, out)
	}
	if out, err := troupe("start", "web", bundle); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("start of a taken id: %v %q", err, out)
	}
	must("kill", "web", "-s", "KILL")
	testutil.Eventually(t, "web to stop", func() bool { return strings.Contains(must("ps"), "stopped") })
	var info container
	if err := json.Unmarshal([]byte(must("inspect", "web")), &info); err != nil || info.State.ExitStatus == nil || *info.State.ExitStatus != 137 {
		t.Errorf("inspect after kill: %+v %v", info, err)
	}
	must("rm", "web")
	if out := must("ps", "-q"); out != "" {
		t.Errorf("ps after rm: %q", out)
	}
}

// TestDaemonRestartKeepsContainers stops the daemon with SIGTERM while a
// container runs: the container keeps running, and the next daemon on the
// same state dir re-adopts it and can manage it.
func TestDaemonRestartKeepsContainers(t *testing.T) {
	for _, mode := range daemonModes {
		t.Run(mode.name, func(t *testing.T) { testDaemonRestartKeepsContainers(t, mode.args...) })
	}
}

func testDaemonRestartKeepsContainers(t *testing.T, args ...string) {
	d := startDaemon(t, args...)
	api := "http://" + d.tcp
	bundle := filepath.Join(d.dir, "b")
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sh", "-c", "while true; do echo tick; sleep 0.2; done").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v %s", err, out)
	}
	resp, err := e2eClient.Post(api+"/containers/keeper", "application/json", strings.NewReader(`{"bundlePath": "`+bundle+`"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("start: %v %v", err, resp)
	}
	var c container
	_ = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	pid := c.Processes[0].Pid

	d.terminate(t)
	if !alive(pid) {
		t.Fatal("the container died with the daemon")
	}
	logPath := filepath.Join(d.dir, "root", "logs", "keeper.log")
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Without a daemon the output waits in the container's pipe (the init
	// holds its read end, so writing never fails); the next daemon takes
	// the pipe back and the log catches up.
	before := size()
	testutil.Eventually(t, "the container's output to wait in its pipe while no daemon runs", func() bool {
		return pipeBacklog(t, pid) >= 4*len("tick\n")
	})
	if !alive(pid) {
		t.Fatal("the container died while no daemon ran")
	}

	d.launch(t)
	testutil.Eventually(t, "the output written while no daemon ran to reach the log", func() bool { return size() >= before+int64(4*len("tick\n")) })
	get := func() container {
		t.Helper()
		resp, err := e2eClient.Get(api + "/containers/keeper")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("get after restart: %v %v", err, resp)
		}
		defer resp.Body.Close()
		var c container
		_ = json.NewDecoder(resp.Body).Decode(&c)
		return c
	}
	if c := get(); c.State.Status != "running" || len(c.Processes) != 1 || c.Processes[0].Pid != pid {
		t.Fatalf("after restart: %+v; want running with init %d", c, pid)
	}
	req, _ := nethttp.NewRequest("PUT", api+"/containers/keeper/processes", strings.NewReader(`{"args": ["true"]}`))
	if resp, err := e2eClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("exec after restart: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	req, _ = nethttp.NewRequest("PATCH", api+"/containers/keeper", strings.NewReader(`{"signal": "KILL"}`))
	if resp, err := e2eClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("kill after restart: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// Not the daemon's child any more: the exit is seen, its code is not.
	testutil.Eventually(t, "the re-adopted container to stop", func() bool { return get().State.Status == "stopped" })
	if c := get(); c.State.ExitStatus == nil || *c.State.ExitStatus != -1 {
		t.Errorf("exit status of a re-adopted container = %v, want -1 (unknown)", c.State.ExitStatus)
	}
	req, _ = nethttp.NewRequest("DELETE", api+"/containers/keeper", nil)
	if resp, err := e2eClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete after restart: %v %v; log:\n%s", err, resp, d.log())
	} else {
		resp.Body.Close()
	}
	if matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup, "keeper")); len(matches) > 0 {
		t.Errorf("cgroups left behind: %v", matches)
	}
}

// pipeBacklog is how many bytes wait unread in the pipe that is pid's
// stdout, seen through a read end of our own that reads nothing.
func pipeBacklog(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", pid), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("the stdout of %d: %v", pid, err)
	}
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioctlErr error
	// TIOCINQ is FIONREAD: the bytes a read would get.
	if err := raw.Control(func(fd uintptr) { n, ioctlErr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ioctlErr != nil {
		t.Fatalf("FIONREAD on the stdout of %d: %v", pid, ioctlErr)
	}
	return n
}

// TestMigrationBetweenDaemons moves a running counter from one daemon to
// another, each with its own root, state, port and cgroups: checkpoint with
// exit on the source, archive out, archive in, restore on the target. The
// counter goes on from where it was, and the source no longer runs it.
func TestMigrationBetweenDaemons(t *testing.T) {
	src, dst := startDaemon(t), startDaemon(t)
	bundle := filepath.Join(src.dir, "counter")
	if out, err := exec.Command(src.bin, "bundle", bundle, "--", "sh", "-c",
		"i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; usleep 50000; done").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v %s", err, out)
	}
	call := func(method, url, body string) (int, []byte) {
		t.Helper()
		return callURL(t, method, url, body)
	}
	count := func(pid int) int {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/count", pid))
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	code, body := call("POST", "http://"+src.tcp+"/containers/mover", `{"bundlePath": "`+bundle+`"}`)
	if code != 201 {
		t.Fatalf("start on the source: %d %s", code, body)
	}
	var c container
	_ = json.Unmarshal(body, &c)
	testutil.Eventually(t, "the counter to pass 10", func() bool { return count(c.Processes[0].Pid) > 10 })

	frozen := time.Now()
	if code, body := call("POST", "http://"+src.tcp+"/containers/mover/checkpoint/m1", `{"exit": true}`); code != 201 {
		t.Fatalf("checkpoint on the source: %d %s", code, body)
	}
	code, archive := call("GET", "http://"+src.tcp+"/containers/mover/checkpoint/m1/archive", "")
	if code != 200 {
		t.Fatalf("export: %d %s", code, archive)
	}
	if code, body := call("PUT", "http://"+dst.tcp+"/containers/mover/checkpoint/m1/archive", string(archive)); code != 201 {
		t.Fatalf("import on the target: %d %s", code, body)
	}
	code, body = call("POST", "http://"+dst.tcp+"/containers/mover", `{"checkpoint": "m1"}`)
	if code != 201 {
		t.Fatalf("restore on the target: %d %s", code, body)
	}
	downtime := time.Since(frozen)
	var moved container
	_ = json.Unmarshal(body, &moved)
	pid := moved.Processes[0].Pid
	if n := count(pid); n < 10 {
		t.Errorf("the moved counter is at %d; it should go on from where it was", n)
	}
	at := count(pid)
	testutil.Eventually(t, "the moved counter to count", func() bool { return count(pid) > at })
	code, body = call("GET", "http://"+src.tcp+"/containers/mover", "")
	if err := json.Unmarshal(body, &c); code != 200 || err != nil || c.State.Status != "stopped" {
		t.Errorf("the source still shows %d %s; want it stopped", code, body)
	}
	t.Logf("migration downtime (checkpoint with exit, export, import, restore, on one machine): %v, archive %d bytes", downtime, len(archive))

	// Back again with the CLI, which removes it from the source, once the
	// first daemon has let go of its stopped copy.
	if code, body := call("DELETE", "http://"+src.tcp+"/containers/mover", ""); code != 204 {
		t.Fatalf("delete the stopped original: %d %s", code, body)
	}
	out, err := command(t, dst.bin, "--address", "tcp://"+dst.tcp, "migrate", "mover", "--to", "tcp://"+src.tcp, "--name", "back").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "downtime") {
		t.Fatalf("troupe migrate: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if code, _ := call("GET", "http://"+dst.tcp+"/containers/mover", ""); code != 404 {
		t.Errorf("after troupe migrate the source still has the container: %d", code)
	}
	if code, _ := call("DELETE", "http://"+src.tcp+"/containers/mover", ""); code != 409 {
		t.Errorf("the container is not running back on the first daemon: delete without force answered %d", code)
	}
}

// callURL sends a request with body to url, as a daemon's client would
// with the tests' token, and returns its status and body.
func callURL(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := nethttp.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}
