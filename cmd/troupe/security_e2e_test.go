package main

import (
	"context"
	"encoding/json"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
// start, naming both ways out, and that nothing listens.
func refused(t *testing.T, tokenFile string, flags ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon starts real containers")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "troupe")
	buildTroupe(t, bin)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cgroup := "/troupe-e2e-" + filepath.Base(dir)
	linuxtest.TrackCgroup(cgroup)
	t.Cleanup(func() { linuxtest.RemoveCgroup(cgroup) })
	args := []string{"daemon", "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"),
		"--listen", "unix://" + filepath.Join(dir, "troupe.sock"), "--listen", "tcp://" + addr, "--cgroup-parent", cgroup}
	if tokenFile != "" {
		args = append(args, "--token-file", tokenFile)
	}
	// A daemon that serves never exits by itself: the deadline ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, flags...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("the daemon exited with status 0; its output:\n%s", out.String())
			}
			for _, want := range []string{addr, "--token-file", "--insecure-tcp", "root"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the refusal does not mention %q: %s", want, out.String())
				}
			}
			return
		case <-tick.C:
			if resp, err := anonymous.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				cancel()
				<-done
				t.Fatalf("the daemon serves TCP on %s without a token (answered %d); its output:\n%s", addr, resp.StatusCode, out.String())
			}
		case <-ctx.Done():
			<-done
			t.Fatalf("the daemon neither refused nor served within 15 s; its output:\n%s", out.String())
		}
	}
}
