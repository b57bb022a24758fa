package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/testutil"
)

// crash kills the daemon with SIGKILL, as a crash would, and waits for it.
func (d *daemon) crash(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
}

// status is the container's status, or "" when the daemon does not know it.
func (d *daemon) status(t *testing.T, id string) string {
	t.Helper()
	code, body := d.call(t, "GET", "/containers/"+id, "")
	if code != 200 {
		return ""
	}
	var c struct {
		State struct{ Status string }
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("GET %s: %v: %s", id, err, body)
	}
	return c.State.Status
}

// assertNothingLeft checks that the daemon holds nothing: no container
// state, log, cgroup below its parent, mount below its directories.
func (d *daemon) assertNothingLeft(t *testing.T) {
	t.Helper()
	for _, dir := range []string{filepath.Join(d.dir, "state", "containers"), filepath.Join(d.dir, "state", "logs")} {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("left in %s: %v", dir, names)
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup, "*")); len(dirs) > 0 {
		var subdirs []string
		for _, p := range dirs {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				subdirs = append(subdirs, p)
			}
		}
		if len(subdirs) > 0 {
			t.Errorf("cgroups left: %v", subdirs)
		}
	}
	data, _ := os.ReadFile("/proc/thread-self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], d.dir+"/") {
			t.Errorf("mount left: %s", f[4])
		}
	}
}

// TestCrashDuringStartsAndCheckpoint kills the daemon (SIGKILL) while a
// burst of starts is in flight, and again during a checkpoint; each time the
// next daemon must show every id running and working, or absent and free
// for the same request again, and a half-written checkpoint must be gone.
// Once everything is deleted, nothing may be left.
func TestCrashDuringStartsAndCheckpoint(t *testing.T) {
	requireInstalledCriu(t)
	d := startDaemon(t)
	bundle := filepath.Join(d.dir, "sleeper")
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sleep", "300").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v: %s", err, out)
	}
	body := `{"bundlePath": "` + bundle + `"}`

	// A burst of starts, and the crash once a few have answered: the rest
	// are queued or half-way through libcontainer.
	const n = 40
	answered := make([]int, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	firstFew := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := 0
			if resp, err := e2eClient.Post("http://"+d.tcp+fmt.Sprintf("/containers/b%d", i), "application/json", strings.NewReader(body)); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			answered[i] = code
			if done++; done == 5 {
				close(firstFew)
			}
		}()
	}
	testutil.DoneWithin(t, 30*time.Second, "five of the starts to be answered", firstFew)
	d.crash(t)
	wg.Wait()
	d.launch(t)
	if !strings.Contains(d.log(), "removed what an earlier daemon left half-done") {
		t.Log("the crash left no start half-done this time")
	}

	running := 0
	for i := range n {
		id := fmt.Sprintf("b%d", i)
		switch s := d.status(t, id); s {
		case "running":
			running++
			d.execWorks(t, id)
		case "":
			if answered[i] == 201 {
				t.Errorf("%s was started (201) before the crash and is gone after it", id)
			}
			// The client got no answer: the same request again starts it.
			if code, body := d.call(t, "POST", "/containers/"+id, body); code != 201 {
				t.Errorf("%s: retrying the start after the crash: %d %s", id, code, body)
			} else {
				d.execWorks(t, id)
			}
		default:
			t.Errorf("%s is %q after the crash, want running or unknown", id, s)
		}
	}
	t.Logf("after the crash: %d of %d starts had finished, the rest were started again", running, n)

	// A crash during a checkpoint: its directory is there from the moment
	// the dump begins until the checkpoint is committed.
	checkpointDir := filepath.Join(d.dir, "root", "checkpoints", "b0", "cp1")
	go func() {
		// The crash cuts this request short: its answer does not matter.
		if resp, err := e2eClient.Post("http://"+d.tcp+"/containers/b0/checkpoint/cp1", "application/json", strings.NewReader("{}")); err == nil {
			resp.Body.Close()
		}
	}()
	// Polled often: the window between the dump's start and its commit
	// can be short.
	testutil.EventuallyWithin(t, 30*time.Second, "the checkpoint to begin (its directory)", func() bool {
		_, err := os.Stat(checkpointDir)
		return err == nil
	})
	d.crash(t)
	committed := false
	if _, err := os.Stat(filepath.Join(checkpointDir, "checkpoint.json")); err == nil {
		committed = true
		t.Log("the checkpoint was committed before the crash")
	}
	d.launch(t)
	if s := d.status(t, "b0"); s != "running" {
		t.Errorf("after a crash during its checkpoint b0 is %q", s)
	}
	d.execWorks(t, "b0")
	if !committed {
		if code, body := d.call(t, "GET", "/containers/b0/checkpoint", ""); code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("checkpoints of b0 after the crash: %d %s", code, body)
		}
		if _, err := os.Stat(checkpointDir); !os.IsNotExist(err) {
			t.Errorf("the unfinished checkpoint is still on disk: %v", err)
		}
		if code, body := d.call(t, "POST", "/containers/b0/checkpoint/cp1", "{}"); code != 201 {
			t.Errorf("the name of the unfinished checkpoint: %d %s", code, body)
		}
	}

	// Delete everything: nothing may be left.
	for i := range n {
		if code, body := d.call(t, "DELETE", fmt.Sprintf("/containers/b%d?force=true", i), ""); code != 204 {
			t.Errorf("delete b%d: %d %s", i, code, body)
		}
	}
	d.call(t, "DELETE", "/containers/b0/checkpoint/cp1", "")
	d.assertNothingLeft(t)
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.log())
	}
}
