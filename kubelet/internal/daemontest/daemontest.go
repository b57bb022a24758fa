// Package daemontest starts real troupe daemons for the agent's tests: the
// binary make build leaves in the checkout's bin/ (or $TROUPE_BIN), on a
// test's own directories, socket and cgroup parent, stopped and swept when
// the test ends.
package daemontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// BinEnv names the variable that locates the troupe binary; by default it
// is bin/troupe of the checkout the test runs in.
const BinEnv = "TROUPE_BIN"

// RequireEnv, set, turns a missing binary from a skip into a failure
// (make kube-test sets it, as for the control plane).
const RequireEnv = "TROUPE_REQUIRE_KUBE"

// upTimeout bounds a daemon's start: its CRIU self-test comes first.
const upTimeout = 30 * time.Second

// Options shape a daemon.
type Options struct {
	// Name names its directory and cgroup parent.
	Name string
	// Args are more daemon flags (--allow-binds is always given: pods'
	// volumes are bind mounts).
	Args []string
}

// Daemon is a running troupe daemon.
type Daemon struct {
	// Client speaks to it over its socket.
	Client *client.Client
	// Address is its listener, unix:///….
	Address string
	// Dir holds its root, state, socket and log.
	Dir string
	// Root and State are its --root and --state.
	Root, State string
	// CgroupParent is its --cgroup-parent.
	CgroupParent string

	bin  string
	args []string
	cmd  *exec.Cmd
	log  string
}

// Binary returns the troupe binary, skipping t (or failing it under
// RequireEnv) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		root, err := checkoutRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin", "troupe")
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no troupe binary at %s (make build makes it; %s names another)", bin, BinEnv)
		if os.Getenv(RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// checkoutRoot is the directory above the kubelet module's go.mod.
func checkoutRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "kubelet", "go.mod")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no checkout above %s", dir)
}

// Start starts a daemon for t; it is stopped when t ends, after its
// containers are deleted, and whatever is left under its cgroup parent is
// killed.
func Start(t testing.TB, o Options) *Daemon {
	t.Helper()
	linuxtest.RequireRoot(t)
	bin := Binary(t)
	if o.Name == "" {
		o.Name = "node"
	}
	dir, cgroup := sandbox(t, o.Name)
	d := &Daemon{
		Dir: dir, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		CgroupParent: cgroup, log: filepath.Join(dir, "daemon.log"),
	}
	d.Address = "unix://" + filepath.Join(d.State, "troupe.sock")
	args := append([]string{"daemon", "--root", d.Root, "--state", d.State, "--listen", d.Address,
		"--cgroup-parent", d.CgroupParent, "--allow-binds"}, o.Args...)
	d.bin, d.args = bin, args
	d.launch(t)
	t.Cleanup(func() { d.stop(t) })
	var err error
	if d.Client, err = client.New(d.Address); err != nil {
		t.Fatal(err)
	}
	d.waitUp(t)
	return d
}

// launch starts the daemon's process.
func (d *Daemon) launch(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(d.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	d.cmd = exec.Command(d.bin, d.args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(d.cmd.Process.Pid)
}

// Restart stops the daemon with SIGTERM, as an operator would (its
// containers run on), and starts it again on the same directories.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.terminate(t)
	d.launch(t)
	d.waitUp(t)
}

// waitUp waits until the daemon answers and its CRIU self-test has a
// verdict: a daemon stopped while the self-test's criu restore runs can
// leave that criu behind, waiting for ever.
func (d *Daemon) waitUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	for {
		v, err := d.Client.Version(ctx)
		if err == nil && v.Criu != nil && v.Criu.Status == api.CriuChecking {
			err = errors.New("its CRIU self-test still runs")
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("troupe daemon not up within %s: %v; its log:\n%s", upTimeout, err, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sandbox makes a directory and names a cgroup parent of t's own, both
// registered with the test guard and removed when t ends (after the
// cleanups registered later, the daemon's stop among them), killing what
// still runs under the cgroup parent.
func sandbox(t testing.TB, name string) (dir, cgroup string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "troupe-kubelet-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	cgroup = "/troupe-test-" + filepath.Base(dir)
	linuxtest.TrackCgroup(cgroup)
	t.Cleanup(func() {
		if n, err := linuxtest.KillCgroup(cgroup); err != nil {
			t.Errorf("cleanup: %v", err)
		} else if n > 0 {
			t.Logf("cleanup: killed %d processes left under %s", n, cgroup)
		}
		linuxtest.RemoveCgroup(cgroup)
		if err := linuxtest.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir, cgroup
}

// Log returns the daemon's log so far.
func (d *Daemon) Log() string {
	data, _ := os.ReadFile(d.log)
	return string(data)
}

// stop deletes the daemon's containers and stops it with SIGTERM (SIGKILL
// after a grace).
func (d *Daemon) stop(t testing.TB) {
	if d.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cs, err := d.Client.List(ctx); err == nil {
			for _, c := range cs {
				if err := d.Client.Delete(ctx, c.ID, true); err != nil {
					t.Logf("cleanup: delete %s: %v", c.ID, err)
				}
			}
		}
		cancel()
		d.Client.Close()
	}
	d.terminate(t)
	if t.Failed() {
		t.Logf("troupe daemon log:\n%s", d.Log())
	}
}

// terminate stops the daemon's process: SIGTERM, SIGKILL after a grace.
func (d *Daemon) terminate(t testing.TB) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Errorf("troupe daemon: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		t.Errorf("troupe daemon did not stop on SIGTERM; its log:\n%s", d.Log())
	}
}
