package main

import (
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
)

// TestDaemonMainThreadStaysInHostMountNamespace: every container start runs
// libcontainer's mount-source goroutine, which joins the container's mount
// namespace on a locked thread and exits locked. On the daemon's main
// thread, which cannot end, that left the daemon (/proc/<pid>/root,
// /proc/<pid>/mountinfo) in a container's namespace for good, and kept that
// namespace alive after the container's deletion. It happened to about one
// daemon in two: to those whose main thread was not already taken for good
// by the runtime's signal-mask goroutine (os/signal), which Go places at
// random. So the test starts the daemon several times, and after each
// daemon's starts its main thread must still be in the namespace it started
// in: without the fix one of eight daemons is caught all but always.
func TestDaemonMainThreadStaysInHostMountNamespace(t *testing.T) {
	d := startDaemon(t)
	nsOf := func(path string) string {
		t.Helper()
		ns, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	goruntime.LockOSThread()
	host := nsOf("/proc/thread-self/ns/mnt")
	goruntime.UnlockOSThread()
	bundle := filepath.Join(d.dir, "b")
	if out, err := exec.Command(d.bin, "bundle", bundle, "--", "sleep", "300").CombinedOutput(); err != nil {
		t.Fatalf("bundle: %v %s", err, out)
	}
	call := func(method, path, body string) (int, string) {
		req, _ := nethttp.NewRequest(method, "http://"+d.tcp+path, strings.NewReader(body))
		resp, err := e2eClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	// A main thread that can be caught is caught within about 20 starts.
	const daemons, rounds, perRound = 8, 4, 5
	for n := range daemons {
		if n > 0 {
			d.terminate(t)
			d.launch(t)
		}
		pid := d.cmd.Process.Pid
		if atStart := nsOf(fmt.Sprintf("/proc/%d/ns/mnt", pid)); atStart != host {
			t.Fatalf("daemon %d started in mount namespace %s, this test runs in %s", n, atStart, host)
		}
		for round := range rounds {
			var wg sync.WaitGroup
			errs := make(chan string, perRound)
			for i := range perRound {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("ns%d-%d-%d", n, round, i)
					if code, body := call("POST", "/containers/"+id, `{"bundlePath": "`+bundle+`"}`); code != 201 {
						errs <- fmt.Sprintf("start %s: %d %s", id, code, body)
						return
					}
					if code, body := call("DELETE", "/containers/"+id+"?force=true", ""); code != 204 {
						errs <- fmt.Sprintf("delete %s: %d %s", id, code, body)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
		}
		if now := nsOf(fmt.Sprintf("/proc/%d/ns/mnt", pid)); now != host {
			t.Fatalf("after %d starts the main thread of daemon %d (of %d) is in mount namespace %s, not %s where it started: a container's",
				rounds*perRound, n+1, daemons, now, host)
		}
	}
}
