package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

func TestConfigCheck(t *testing.T) {
	good := config{Dir: "/run/x", Registry: "127.0.0.1:5000", PodCIDR: "10.89.0.0/24", Bridge: "troupe-kup0", CgroupParent: "/troupe-kube-up"}
	if err := good.check(); err != nil {
		t.Fatalf("%+v: %v", good, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*config)
	}{
		{"registry not loopback", func(c *config) { c.Registry = "10.0.0.1:5000" }},
		{"registry without port", func(c *config) { c.Registry = "127.0.0.1" }},
		{"bad pod CIDR", func(c *config) { c.PodCIDR = "10.89.0.0" }},
		{"bridge too long", func(c *config) { c.Bridge = "a-very-long-bridge" }},
		{"root cgroup", func(c *config) { c.CgroupParent = "/" }},
		{"troupe's own cgroup", func(c *config) { c.CgroupParent = "/troupe" }},
		{"relative cgroup", func(c *config) { c.CgroupParent = "kube-up" }},
		{"root dir", func(c *config) { c.Dir = "/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if err := c.check(); err == nil {
				t.Errorf("%+v: no error", c)
			}
		})
	}
}

// TestOurs checks that up and down leave a directory alone that is not
// kube-up's.
func TestOurs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files []string
		ok    bool
	}{
		{"missing", nil, true},
		{"empty", []string{}, true},
		{"kube-up's", []string{configFile, "logs"}, true},
		{"locked only", []string{lockFile}, true},
		{"someone else's", []string{"notes.txt"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.files != nil {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(d, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := ours(d); (err == nil) != tc.ok {
				t.Errorf("ours: %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if err := down(io.Discard, d, time.Second); err == nil {
					t.Errorf("down of someone else's directory: no error")
				}
				if _, err := os.Stat(filepath.Join(d, "notes.txt")); err != nil {
					t.Errorf("down touched someone else's directory: %v", err)
				}
			}
		})
	}
}

// kubeUp is one run of the program on a test's own directory, names and
// ports, not to collide with a user's make kube-up.
type kubeUp struct {
	bin, dir, registry, bridge, cgroup string
	upArgs                             []string
	downed                             bool
}

// newKubeUp builds the program and chooses the names of a test's run;
// the test ends with a down, unless it ran one.
func newKubeUp(t *testing.T) *kubeUp {
	t.Helper()
	linuxtest.RequireRoot(t)
	var cpo controlplane.Options
	if missing := cpo.Missing(); len(missing) > 0 {
		msg := "missing " + strings.Join(missing, "; ")
		if os.Getenv(controlplane.RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	registrytest.RequireBinary(t)
	troupe := daemontest.Binary(t)

	tmp := t.TempDir()
	k := &kubeUp{bin: buildSelf(t, tmp), dir: filepath.Join(tmp, "state")}
	k.registry = fmt.Sprintf("127.0.0.1:%d", mustFreePort(t))
	k.bridge = fmt.Sprintf("kut%d-%d", os.Getpid()%100000, rand.IntN(1000))
	k.cgroup = "/troupe-test-kube-up-" + filepath.Base(tmp)
	linuxtest.TrackCgroup(k.cgroup)
	podCIDR := fmt.Sprintf("10.%d.%d.0/24", 250+rand.IntN(5), rand.IntN(250))
	k.upArgs = []string{"up", "--troupe", troupe, "--registry", k.registry, "--node-name", "kube-up-test",
		"--pod-cidr", podCIDR, "--bridge", k.bridge, "--cgroup-parent", k.cgroup, "--timeout", "4m"}
	t.Cleanup(func() {
		if k.downed {
			return
		}
		if out, err := k.run(t, 3*time.Minute, "down"); err != nil {
			t.Errorf("cleanup: down: %v: %s", err, out)
		}
	})
	return k
}

func (k *kubeUp) run(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--dir", k.dir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (k *kubeUp) kubeconfig() string { return filepath.Join(k.dir, kubeconfigFile) }

// up runs up, checks its last line, and returns the supervisor and its
// children.
func (k *kubeUp) up(t *testing.T) (supervisor proc, kids []proc) {
	t.Helper()
	start := time.Now()
	out, err := k.run(t, 5*time.Minute, k.upArgs...)
	if err != nil {
		t.Fatalf("up: %v: %s%s", err, out, logs(k.dir))
	}
	t.Logf("up took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if got, want := lastLine(out), "export KUBECONFIG="+k.kubeconfig(); got != want {
		t.Fatalf("up's last line %q, want %q", got, want)
	}
	sup, err := readProcs(filepath.Join(k.dir, pidFile))
	if err != nil || len(sup) != 1 {
		t.Fatalf("supervisor pid: %v %v", sup, err)
	}
	if kids, err = readProcs(filepath.Join(k.dir, childrenFile)); err != nil {
		t.Fatal(err)
	}
	linuxtest.TrackProcess(sup[0].PID)
	names := map[string]bool{}
	for _, p := range kids {
		linuxtest.TrackProcess(p.PID)
		names[p.Name] = true
	}
	for _, n := range []string{"docker-registry", "troupe", "etcd", "kube-apiserver", "kube-controller", "kube-scheduler"} {
		if !names[n] {
			t.Errorf("no %s among the supervisor's children %v", n, kids)
		}
	}
	return sup[0], kids
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// applyHello applies the deploy/kubernetes example as the README has users
// apply it, its image at the test's registry, and waits until its 3 pods
// run and serve their page.
func (k *kubeUp) applyHello(t *testing.T) {
	t.Helper()
	examples := filepath.Join("..", "..", "..", "deploy", "kubernetes")
	manifest, err := os.ReadFile(filepath.Join(examples, "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest = bytes.ReplaceAll(manifest, []byte("127.0.0.1:5000/"), []byte(k.registry+"/"))
	bin, err := controlplane.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kubectl := func(stdin []byte, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig())
		cmd.Stdin = bytes.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, out)
		}
	}
	kubectl(manifest, "apply", "-f", "-")
	// The README's RBAC for real clusters is valid, as the API server
	// sees it.
	kubectl(nil, "apply", "-f", filepath.Join(examples, "rbac.yaml"))

	kcfg, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(kcfg)
	var pods []corev1.Pod
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ps, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err == nil {
			pods = pods[:0]
			for _, p := range ps.Items {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
					pods = append(pods, p)
				}
			}
			if len(pods) == 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 hello pods not Running within 2m (%d are; %v)%s", len(pods), err, logs(k.dir))
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Each serves its page on its address, which the node reaches over
	// the pods' bridge.
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, p := range pods {
		url := "http://" + net.JoinHostPort(p.Status.PodIP, "8080") + "/"
		var body []byte
		for try := 0; ; try++ {
			resp, err := hc.Get(url)
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				break
			}
			if try == 20 {
				t.Fatalf("GET %s: %v", url, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if want := "hello from " + p.Name + "\n"; string(body) != want {
			t.Errorf("GET %s: %q, want %q", url, body, want)
		}
	}
}

// down runs down and checks that it left nothing: none of procs, no
// cgroup, bridge, mount or directory.
func (k *kubeUp) down(t *testing.T, procs []proc) {
	t.Helper()
	start := time.Now()
	out, err := k.run(t, 3*time.Minute, "down")
	k.downed = true
	if err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	t.Logf("down took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %v still runs", p)
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", k.cgroup)); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	if _, err := net.InterfaceByName(k.bridge); err == nil {
		t.Errorf("bridge %s left", k.bridge)
	}
	if _, err := os.Stat(k.dir); !os.IsNotExist(err) {
		t.Errorf("state directory: %v, want it gone", err)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mi, []byte(k.dir)) {
		t.Errorf("mounts left under %s", k.dir)
	}
	// down again: nothing to do.
	if out, err := k.run(t, time.Minute, "down"); err != nil || !strings.Contains(out, "nothing runs") {
		t.Errorf("down again: %v: %s", err, out)
	}
}

// TestUpDown is make kube-up's whole use: up, the deploy/kubernetes
// example applied with kubectl and serving, up again changing nothing,
// down leaving nothing.
func TestUpDown(t *testing.T) {
	k := newKubeUp(t)
	// Two ups at once start one supervisor, and print the same.
	type result struct {
		out string
		err error
	}
	other := make(chan result, 1)
	go func() {
		out, err := k.run(t, 5*time.Minute, k.upArgs...)
		other <- result{out, err}
	}()
	sup, kids := k.up(t)
	if r := <-other; r.err != nil || lastLine(r.out) != "export KUBECONFIG="+k.kubeconfig() {
		t.Errorf("the other up: %v:\n%s", r.err, r.out)
	}
	if again, _ := readProcs(filepath.Join(k.dir, pidFile)); len(again) != 1 || again[0] != sup {
		t.Errorf("after two ups: supervisor %v, was %v", again, sup)
	}
	k.applyHello(t)

	again, _ := k.up(t)
	if again != sup {
		t.Errorf("up again: supervisor %v, was %v", again, sup)
	}

	containers := cgroupProcs(k.cgroup)
	if len(containers) < 3 {
		t.Errorf("%d processes under %s, want a container for each of 3 pods", len(containers), k.cgroup)
	}
	k.down(t, append(append([]proc{sup}, kids...), containers...))
}

// TestSupervisorKilled kills the supervisor, as a crash would: up then
// clears what it left and starts anew, and so does down.
func TestSupervisorKilled(t *testing.T) {
	k := newKubeUp(t)
	sup, kids := k.up(t)
	k.applyHello(t)
	old := append(append([]proc{sup}, kids...), cgroupProcs(k.cgroup)...)
	kill := func(p proc) {
		t.Helper()
		if err := p.signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitGone(p, 10*time.Second) {
			t.Fatalf("supervisor %v still runs after SIGKILL", p)
		}
	}
	kill(sup)

	sup2, kids2 := k.up(t)
	if sup2 == sup {
		t.Fatalf("up after a crash: the same supervisor %v", sup)
	}
	for _, p := range old {
		if p.alive() {
			t.Errorf("process %v of the killed supervisor still runs", p)
		}
	}
	kill(sup2)
	k.down(t, append([]proc{sup2}, kids2...))
}

// buildSelf builds this program into dir: up runs itself as the
// supervisor.
func buildSelf(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "troupe-kube-up")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cgroupProcs lists the processes under a cgroup parent (its memory
// hierarchy holds every container).
func cgroupProcs(parent string) []proc {
	var ps []proc
	root := filepath.Join("/sys/fs/cgroup/memory", parent)
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(data)) {
			var pid int
			fmt.Sscan(f, &pid)
			if start, ok := linuxtest.StartTime(pid); ok {
				ps = append(ps, proc{PID: pid, Start: start, Name: filepath.Base(filepath.Dir(path))})
			}
		}
		return nil
	})
	return ps
}

// logs returns the ends of the supervisor's and the agent's logs, for a
// failure.
func logs(dir string) string {
	var b strings.Builder
	for _, f := range []string{logFile, "logs/agent.log", "logs/troupe.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		fmt.Fprintf(&b, "\n--- %s:\n%s", f, tailBytes(data, 3000))
	}
	return b.String()
}
