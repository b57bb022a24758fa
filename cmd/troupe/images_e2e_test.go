package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
)

// pushBusybox starts a registry for t and pushes a busybox image to it as
// repo:tag, returning the reference.
func pushBusybox(t *testing.T, repoTag string) string {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Config{})
	rootfs, err := busybox.Rootfs(filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host() + "/" + repoTag
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}, registrytest.TarDir(t, rootfs))
	return ref
}

// TestImagesWithCLI pulls an image from a registry, runs a container from
// it, and removes both, with the CLI as a docker user would.
func TestImagesWithCLI(t *testing.T) {
	for _, mode := range daemonModes {
		t.Run(mode.name, func(t *testing.T) { testImagesWithCLI(t, mode.args...) })
	}
}

func testImagesWithCLI(t *testing.T, args ...string) {
	d := startDaemon(t, args...)
	ref := pushBusybox(t, "busybox:1")
	troupe := func(args ...string) (string, error) {
		t.Helper()
		out, err := command(t, d.bin, append([]string{"--address", "unix://" + d.sock}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := troupe(args...)
		if err != nil {
			t.Fatalf("troupe %s: %v\n%s\ndaemon log:\n%s", strings.Join(args, " "), err, out, d.log())
		}
		return out
	}

	out := must("pull", ref)
	lines := strings.Split(out, "\n")
	digest := lines[len(lines)-1]
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 || !strings.Contains(out, "pulled") {
		t.Fatalf("pull printed %q; want a line per layer, then the digest", out)
	}
	if out := must("images"); !strings.Contains(out, ref) || !strings.Contains(out, digest[:len("sha256:")+12]) {
		t.Errorf("images:\n%s\nwant %s and its short digest", out, ref)
	}

	if out := must("run", "-d", "--name", "web", "--memory", "64m", "--tmpfs", "/scratch:size=1m", ref, "sh", "-c", "echo hi; sleep 300"); out != "web" {
		t.Errorf("run printed %q, want the id", out)
	}
	testutil.Eventually(t, "web to say hi", func() bool { return must("logs", "web") == "hi" })
	// exec ends as its process did: grep found the tmpfs.
	must("exec", "web", "--", "sh", "-c", "mount | grep -q ' /scratch type tmpfs'")
	if out := must("inspect", "web"); !strings.Contains(out, `"image": "`+digest+`"`) {
		t.Errorf("inspect:\n%s\nwant the image's digest", out)
	}
	if out := must("--json", "images"); !strings.Contains(out, `"containers": 1`) {
		t.Errorf("images while web runs:\n%s\nwant 1 container", out)
	}
	// The default pull policy of run is missing: a second run needs no pull.
	if out := must("run", "-d", "--name", "web2", "--pull", "never", ref, "true"); out != "web2" {
		t.Errorf("run --pull never printed %q", out)
	}
	must("rm", "--force", "web2")

	if out, err := troupe("rmi", ref); err == nil || !strings.Contains(out, "used by 1") {
		t.Errorf("rmi of an image in use: %v %q; want a refusal", err, out)
	}
	must("delete", "--force", "web")
	if out := must("rmi", ref); out != ref {
		t.Errorf("rmi printed %q", out)
	}
	if out := must("images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
	roots, err := os.ReadDir(filepath.Join(d.dir, "root", "images", "rootfs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(roots) != 0 {
		t.Errorf("roots left under the image store: %v", roots)
	}
	// A run pulls what is missing, its progress before the id.
	if out := must("run", "-d", "--name", "again", ref, "sleep", "300"); !strings.Contains(out, "pulled") || !strings.HasSuffix(out, "\nagain") {
		t.Errorf("run of a missing image printed %q; want the pull's progress, then the id", out)
	}
	must("rm", "-f", "again")

	// Attached, as docker run: its output on our streams, its exit code
	// ours, and with --rm nothing left.
	cmd := command(t, d.bin, "--address", "unix://"+d.sock, "run", "--rm", "--name", "once", ref, "sh", "-c", "echo out; echo err >&2; exit 3")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("run attached: exit %d, stdout %q, stderr %q; want 3, out, err", code, stdout.String(), stderr.String())
	}
	if out, err := troupe("inspect", "once"); err == nil {
		t.Errorf("run --rm left its container: %s", out)
	}
	// attach follows a running container's init to its exit.
	must("run", "-d", "--name", "ticker", ref, "sh", "-c", "sleep 1; for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo late >&2; exit 5")
	cmd = command(t, d.bin, "--address", "unix://"+d.sock, "attach", "ticker")
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != 5 || !strings.HasSuffix(stdout.String(), "tick 3\n") || stderr.String() != "late\n" {
		t.Errorf("attach: exit %d, stdout %q, stderr %q; want 5, the ticks, late", code, stdout.String(), stderr.String())
	}
	if out, err := troupe("attach", "ticker"); err == nil || !strings.Contains(out, "ticker") {
		t.Errorf("attach to a stopped container: %v %q; want a refusal naming it", err, out)
	}
	must("rm", "ticker")

	// -i: our stdin is the init's; -it: a shell on a terminal.
	cmd = command(t, d.bin, "--address", "unix://"+d.sock, "run", "--rm", "-i", ref, "sh", "-c", "read x; echo got $x")
	cmd.Stdin = strings.NewReader("piped\n")
	if out, err := cmd.Output(); err != nil || string(out) != "got piped\n" {
		t.Errorf("run -i: %q, %v", out, err)
	}
	master, slave := openPty(t, 90, 20)
	cmd = command(t, d.bin, "--address", "unix://"+d.sock, "run", "--rm", "-it", "--name", "shell", ref, "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scr := newScreen(t, master)
	if _, err := io.WriteString(master, "stty size; hostname\r"); err != nil {
		t.Fatal(err)
	}
	scr.until("20 90")
	scr.until("shell")
	if _, err := io.WriteString(master, "exit 4\r"); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd.Wait()); code != 4 {
		t.Errorf("run -it sh: exit %d, want 4", code)
	}
	if out, err := troupe("inspect", "shell"); err == nil {
		t.Errorf("run --rm -it left its container: %s", out)
	}
}

// TestImagePoolWithCLI: troupe run claims from a pool of the image made
// with the same flags, through the engine as the daemon runs by default.
func TestImagePoolWithCLI(t *testing.T) {
	d := startDaemon(t)
	ref := pushBusybox(t, "busybox:1")
	must := func(args ...string) string {
		t.Helper()
		out, err := command(t, d.bin, append([]string{"--address", "unix://" + d.sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("troupe %s: %v\n%s\ndaemon log:\n%s", strings.Join(args, " "), err, out, d.log())
		}
		return strings.TrimSpace(string(out))
	}
	script := "echo host=$(hostname); exec sleep 300"
	if out := must("pool", "set", "job", "--size", "2", "--image", ref, "--memory", "64m", "--", "sh", "-c", script); !strings.Contains(out, ref) {
		t.Errorf("pool set printed %q, want the pool of %s", out, ref)
	}
	testutil.Eventually(t, "the pool to fill", func() bool { return strings.Contains(must("--json", "pool", "ls"), `"ready": 2`) })
	if out := must("run", "-d", "--name", "w1", "--memory", "64m", ref, "sh", "-c", script); out != "w1" {
		t.Errorf("run printed %q, want the id", out)
	}
	if out := must("inspect", "w1"); !strings.Contains(out, `"warm": true`) {
		t.Errorf("inspect of a container started from the pool's image with its flags:\n%s\nwant it warm", out)
	}
	testutil.Eventually(t, "w1 to name its host", func() bool { return must("logs", "w1") == "host=w1" })
	// Other flags: cold.
	must("run", "-d", "--name", "c1", ref, "sh", "-c", script)
	if out := must("inspect", "c1"); strings.Contains(out, `"warm": true`) {
		t.Errorf("a run with other flags was warm:\n%s", out)
	}
	must("rm", "-f", "w1", "c1")
	must("pool", "rm", "job")
	roots, err := os.ReadDir(filepath.Join(d.dir, "root", "images", "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 0 {
		t.Errorf("roots left under the image store: %v", roots)
	}
}
