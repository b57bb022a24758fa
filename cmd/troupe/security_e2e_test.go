package main

import (
	"encoding/json"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// anonymous makes requests without any token, as a local user who found
// the port would.
var anonymous = &nethttp.Client{Timeout: time.Minute}

// TestDaemonTCPNeedsToken: the API is root-equivalent and loopback is open
// to every local user and every container on the host network, so a TCP
// listener without a token is refused unless the operator says
// --insecure-tcp, and then the daemon says so at start and in /healthz.
func TestDaemonTCPNeedsToken(t *testing.T) {
	_, tokenFile, err := e2eToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		tokenFile string
		flags     []string
		serves    bool // the daemon starts
		open      bool // a request without the token is served
	}{
		{"no token", "", nil, false, false},
		{"no token, insecure-tcp", "", []string{"--insecure-tcp"}, true, true},
		{"token", tokenFile, nil, true, false},
		{"token, insecure-tcp", tokenFile, []string{"--insecure-tcp"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.serves {
				refused(t, tc.tokenFile, tc.flags...)
				return
			}
			d := startDaemonWith(t, tc.tokenFile, tc.flags...)
			resp, err := anonymous.Get("http://" + d.tcp + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode == 200; got != tc.open {
				t.Errorf("GET /healthz without the token answered %d", resp.StatusCode)
			}
			var h struct{ Status, Insecure string }
			resp, err = e2eClient.Get("http://" + d.tcp + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err != nil || h.Status != "ok" {
				t.Fatalf("/healthz: %+v, %v", h, err)
			}
			warned := strings.Contains(d.log(), "without a token (--insecure-tcp)")
			switch {
			case tc.open && (!strings.Contains(h.Insecure, d.tcp) || !strings.Contains(h.Insecure, "root")):
				t.Errorf("/healthz of a daemon serving TCP without a token says insecure %q; want the address and why it matters", h.Insecure)
			case tc.open && !warned:
				t.Errorf("no warning at start; the daemon's log:\n%s", d.log())
			case !tc.open && (h.Insecure != "" || warned):
				t.Errorf("a daemon with a token says it is insecure: %q (warned at start: %v)", h.Insecure, warned)
			}
		})
	}
}

// refused runs a daemon with a TCP listener and checks that it refuses to
// start, naming both ways out.
func refused(t *testing.T, tokenFile string, flags ...string) {
	t.Helper()
	if tokenFile != "" {
		flags = append(flags, "--token-file", tokenFile)
	}
	served, out := tryDaemon(t, flags...)
	if served {
		t.Fatalf("the daemon serves TCP without a token; its output:\n%s", out)
	}
	for _, want := range []string{"127.0.0.1:", "--token-file", "--insecure-tcp", "root"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not mention %q: %s", want, out)
		}
	}
}

// tryDaemon runs this tree's daemon on a directory of the test's own, with
// a unix socket, a TCP listener on a free loopback port and a cgroup parent
// of its own, and args added (a later --root or --state wins), until it
// exits or answers on TCP, and reports which, with what it said. One that
// answers is stopped with SIGTERM.
func tryDaemon(t *testing.T, args ...string) (served bool, out string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon starts real containers")
	}
	bin := troupeBinary(t)
	box := troupetest.NewSandbox(t, "e2e-try")
	dir, cgroup := box.Dir, box.CgroupParent
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args = append([]string{"daemon", "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"),
		"--listen", "unix://" + filepath.Join(dir, "troupe.sock"), "--listen", "tcp://" + addr, "--cgroup-parent", cgroup}, args...)
	cmd := exec.Command(bin, args...)
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// A daemon that serves never exits by itself.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("the daemon exited with status 0 without being asked to")
			}
			return false, output.String()
		case <-tick.C:
			resp, err := anonymous.Get("http://" + addr + "/healthz")
			if err != nil {
				continue
			}
			resp.Body.Close()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("the daemon did not stop cleanly on SIGTERM: %v", err)
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("the daemon did not stop on SIGTERM")
			}
			return true, output.String()
		case <-deadline:
			_ = cmd.Process.Kill()
			err := <-done
			t.Fatalf("the daemon neither refused nor served within 20 s (%v); its output:\n%s", err, output.String())
		}
	}
}

// TestDaemonChecksItsFiles: the daemon trusts its directories and its token
// file, so it refuses to start on ones that others own or can write, and a
// token file others can read; missing directories it makes 0700.
func TestDaemonChecksItsFiles(t *testing.T) {
	// Its files belong to root or to nobody, and the daemons run as root.
	linuxtest.RequireRoot(t)
	token, _, err := e2eToken()
	if err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	// file writes a token file with mode and owner.
	file := func(t *testing.T, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// dir makes a directory with mode and owner.
	dir := func(t *testing.T, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		flags func(t *testing.T) []string
		// serves, or else the refusal says all of refusal.
		serves  bool
		refusal []string
	}{
		{"token file 0600", func(t *testing.T) []string { return []string{"--token-file", file(t, 0o600, 0)} }, true, nil},
		{"token file 0644", func(t *testing.T) []string { return []string{"--token-file", file(t, 0o644, 0)} }, false, []string{"token", "0644", "chmod 600"}},
		{"token file 0640", func(t *testing.T) []string { return []string{"--token-file", file(t, 0o640, 0)} }, false, []string{"token", "0640"}},
		{"token file 0620", func(t *testing.T) []string { return []string{"--token-file", file(t, 0o620, 0)} }, false, []string{"token", "0620"}},
		{"token file of nobody", func(t *testing.T) []string { return []string{"--token-file", file(t, 0o600, nobody)} }, false, []string{"token", "owned by uid 65534"}},
		{"root 0755", func(t *testing.T) []string { return []string{"--insecure-tcp", "--root", dir(t, 0o755, 0)} }, true, nil},
		{"root of nobody", func(t *testing.T) []string { return []string{"--insecure-tcp", "--root", dir(t, 0o700, nobody)} }, false, []string{"--root", "owned by uid 65534"}},
		{"root 0770", func(t *testing.T) []string { return []string{"--insecure-tcp", "--root", dir(t, 0o770, 0)} }, false, []string{"--root", "0770", "go-w"}},
		{"state 0702", func(t *testing.T) []string { return []string{"--insecure-tcp", "--state", dir(t, 0o702, 0)} }, false, []string{"--state", "0702"}},
		{"state of nobody", func(t *testing.T) []string { return []string{"--insecure-tcp", "--state", dir(t, 0o700, nobody)} }, false, []string{"--state", "owned by uid 65534"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := tc.flags(t)
			served, out := tryDaemon(t, flags...)
			switch {
			case tc.serves && !served:
				t.Fatalf("the daemon did not start: %s", out)
			case !tc.serves && served:
				t.Fatalf("the daemon started with %v; want a refusal; its output:\n%s", flags, out)
			}
			for _, want := range tc.refusal {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not mention %q: %s", want, out)
				}
			}
		})
	}

	t.Run("missing directories", func(t *testing.T) {
		base := t.TempDir()
		root, state := filepath.Join(base, "a", "root"), filepath.Join(base, "b", "state")
		if served, out := tryDaemon(t, "--insecure-tcp", "--root", root, "--state", state); !served {
			t.Fatalf("the daemon did not start: %s", out)
		}
		for _, d := range []string{root, state} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v, %v; want it made 0700", d, fi.Mode(), err)
			}
		}
	})
}
