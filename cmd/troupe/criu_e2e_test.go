package main

import (
	"encoding/json"
	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// requireInstalledCriu skips a test that needs make criu's CRIU when there
// is none, unless TROUPE_REQUIRE_CRIU says that missing it is a failure.
func requireInstalledCriu(t *testing.T) {
	t.Helper()
	path := filepath.Join(linuxtest.CriuPrefix(), "bin", "criu")
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("TROUPE_REQUIRE_CRIU") != "" {
		t.Fatalf("no CRIU at %s: run make criu", path)
	}
	t.Skipf("no CRIU at %s (make criu installs one)", path)
}

// call makes one API request and returns the status and body.
func (d *daemon) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := nethttp.NewRequest(method, "http://"+d.tcp+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// criuVerdict is the daemon's CRIU verdict from /healthz.
func (d *daemon) criuVerdict(t *testing.T) (status, errMsg string) {
	t.Helper()
	_, body := d.call(t, "GET", "/healthz", "")
	var h struct {
		Status string
		Criu   struct{ Status, Error string }
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz: %v: %s", err, body)
	}
	if h.Status != "ok" {
		t.Errorf("/healthz says %q", body)
	}
	return h.Criu.Status, h.Criu.Error
}

// startSleeper starts container id running sleep, through the CLI.
func (d *daemon) startSleeper(t *testing.T, id string) {
	t.Helper()
	bundle := filepath.Join(d.dir, "bundle-"+id)
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sleep", "300").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	if code, body := d.call(t, "POST", "/containers/"+id, `{"bundlePath": "`+bundle+`/"}`); code != 201 {
		t.Fatalf("start %s: %d %s", id, code, body)
	}
}

// execWorks runs a process in id and checks that it was made.
func (d *daemon) execWorks(t *testing.T, id string) {
	t.Helper()
	if code, body := d.call(t, "PUT", "/containers/"+id+"/processes", `{"args": ["true"]}`); code != 201 {
		t.Errorf("exec in %s: %d %s", id, code, body)
	}
}

func TestDaemonWithCriuThatFailsItsSelfTest(t *testing.T) {
	fake, _ := linuxtest.FakeCriu(t, linuxtest.SilentCriu)
	d := startDaemon(t, "--criu", fake, "--criu-selftest-timeout", "2s")
	want := "CRIU 9.9.9 did not finish a test dump within 2s"
	if status, msg := d.criuVerdict(t); status != "failed" || msg != want {
		t.Errorf("CRIU verdict %s %q, want failed %q", status, msg, want)
	}
	d.startSleeper(t, "c1")
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/containers/c1/checkpoint/cp1", "{}"},
		{"POST", "/containers/c2", `{"checkpoint": "c1/cp1"}`},
	} {
		code, body := d.call(t, req.method, req.path, req.body)
		if code != nethttp.StatusServiceUnavailable || !strings.Contains(body, want) {
			t.Errorf("%s %s: %d %s, want 503 naming the cause", req.method, req.path, code, body)
		}
	}
	// Nothing else is affected.
	d.execWorks(t, "c1")
	if code, body := d.call(t, "GET", "/containers/c1/checkpoint", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("checkpoint list: %d %s", code, body)
	}
	if out, err := command(t, d.bin, "--address", "unix://"+d.sock, "version").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "criu 9.9.9 ("+fake+"): failed: "+want) {
		t.Errorf("troupe version: %v\n%s", err, out)
	}
}

func TestDaemonKillsCriuThatHangsInACheckpoint(t *testing.T) {
	requireInstalledCriu(t)
	fake, dir := linuxtest.FakeCriu(t, linuxtest.MidwayCriu)
	const deadline = 6 * time.Second
	d := startDaemon(t, "--criu", fake, "--criu-timeout", deadline.String())
	if status, msg := d.criuVerdict(t); status != "passed" {
		t.Fatalf("CRIU verdict %s %q: the fake passes the self-test with the real CRIU", status, msg)
	}
	d.startSleeper(t, "c1")

	type answer struct {
		code int
		body string
		took time.Duration
	}
	t0 := time.Now()
	checkpointed := make(chan answer, 1)
	go func() {
		code, body := d.call(t, "POST", "/containers/c1/checkpoint/cp1", "{}")
		checkpointed <- answer{code, body, time.Since(t0)}
	}()
	testutil.Eventually(t, "CRIU to hang", func() bool { return linuxtest.HungPid(dir) != 0 })
	// An exec asked meanwhile waits its turn, no longer than the deadline.
	code, body := d.call(t, "PUT", "/containers/c1/processes", `{"args": ["true"]}`)
	execTook := time.Since(t0)
	a := <-checkpointed
	t.Logf("checkpoint answered %d after %s: %s", a.code, a.took.Round(time.Millisecond), a.body)
	if a.code != nethttp.StatusGatewayTimeout || !strings.Contains(a.body, "CRIU did not finish within 6s") {
		t.Errorf("checkpoint: %d %s, want 504 saying that CRIU timed out", a.code, a.body)
	}
	if a.took > deadline+3*time.Second {
		t.Errorf("the checkpoint answered after %s with a %s deadline", a.took, deadline)
	}
	if code != 201 || execTook > deadline+3*time.Second {
		t.Errorf("an exec during the checkpoint: %d %s after %s", code, body, execTook)
	}

	// The container runs on, as it was.
	if code, body := d.call(t, "GET", "/containers/c1", ""); code != 200 || !strings.Contains(body, `"running"`) {
		t.Errorf("after the timeout: %d %s", code, body)
	}
	d.execWorks(t, "c1")
	hung := linuxtest.HungPid(dir)
	testutil.Eventually(t, "the hung CRIU to be gone", func() bool { return linuxtest.Gone(hung) })
	// No half-written checkpoint: not listed, not on disk, the name free.
	if code, body := d.call(t, "GET", "/containers/c1/checkpoint", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("checkpoint list: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "root", "checkpoints", "c1", "cp1")); !os.IsNotExist(err) {
		t.Errorf("the half-written checkpoint is still on disk: %v", err)
	}
	// Delete leaves nothing of it.
	if code, body := d.call(t, "DELETE", "/containers/c1?force=true", ""); code != 204 {
		t.Errorf("delete: %d %s", code, body)
	}
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup, "c1")); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}
