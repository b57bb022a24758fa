package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/kubelet/internal/podvolumes"
	"github.com/troupe-run/troupe/runtime/podns"
)

func TestMain(m *testing.M) {
	// client-go's klog would fill the test's output; the agents' own logs
	// go to files and are shown when a test fails.
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	os.Exit(linuxtest.Guarded(m.Run))
}

// testNode is one troupe node: a daemon and an agent run in this process.
type testNode struct {
	name   string
	d      *daemontest.Daemon
	bridge string
	stop   func()
}

// startNode starts a troupe daemon and an agent for it named name, on a
// pod subnet and bridge of its own: subnet numbers the node's /21 of
// pod addresses, and bits, 21 or more, is the length of its prefix.
func startNode(t testing.TB, cp *controlplane.ControlPlane, name string, subnet, bits int) *testNode {
	t.Helper()
	d := daemontest.Start(t, daemontest.Options{Name: name})
	n := &testNode{name: name, d: d, bridge: fmt.Sprintf("trk%d-%d", os.Getpid()%100000, subnet)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o := Defaults()
	o.NodeName = name
	// The agent's own credentials (system:node:NAME, troupe:kubelets), as
	// in a real cluster: the RBAC it needs is tested with it.
	if o.Kubeconfig, err = cp.NodeKubeconfig(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	o.Troupe = d.Address
	o.Port = port
	o.PodCIDR = fmt.Sprintf("10.%d.%d.0/%d", 200+rand.IntN(50), 8*subnet, bits)
	o.Bridge = n.bridge
	o.StateDir = filepath.Join(d.Dir, "kubelet")
	o.RunDir = filepath.Join(d.Dir, "kubelet-run")
	o.Backoff, o.MaxBackoff = 500*time.Millisecond, 2*time.Second
	logPath := filepath.Join(d.Dir, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger = slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	var once bool
	n.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30s", name)
		}
		logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("agent %s log:\n%s", name, tail(data, 8000))
		}
	}
	t.Cleanup(func() {
		n.stop()
		// The pods' containers go with the daemon; their volumes (tmpfs
		// mounts among them) stay for the next agent, unless removed.
		vm := &podvolumes.Manager{Dir: filepath.Join(o.StateDir, "pods")}
		uids, err := vm.Prepared()
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, uid := range uids {
			if err := vm.Remove(uid); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		linuxtest.RemoveSandboxes(t, &podns.Manager{Dir: filepath.Join(o.RunDir, "sandboxes"), Apart: true})
		// The bridge is the node's; nothing removes it but its owner.
		runIP("link", "del", n.bridge)
	})
	return n
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// eventually polls cond every 200ms for up to timeout, failing with what
// and the last message cond gave.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
}

// TestTwoNodes is the end-to-end test: a Deployment of 6 replicas
// spreads over two troupe nodes and runs; a container that exits is
// restarted; scaling to 0 leaves nothing behind on either node.
func TestTwoNodes(t *testing.T) {
	cp := controlplane.StartTest(t)
	image := daemontest.PushBusybox(t)
	nodes := []*testNode{startNode(t, cp, "troupe-a", 1, 24), startNode(t, cp, "troupe-b", 2, 24)}
	ctx := context.Background()
	kube := cp.Client

	waitNodeReady(t, cp, 2)

	grace := int64(1)
	sel := map[string]string{"app": "web"}
	createDeployment(t, cp, "web", 6, corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
			WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: sel},
		}},
		Containers: []corev1.Container{{
			Name: "web", Image: image,
			Command: []string{"sh", "-c", "echo hello from $(hostname); exec sleep 100000"},
		}},
	})
	webPods := func() []corev1.Pod {
		ps, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if err != nil {
			t.Fatal(err)
		}
		return ps.Items
	}
	eventually(t, 2*time.Minute, "6 web pods Running and Ready", func() (bool, string) {
		ps := webPods()
		running := 0
		var states []string
		for _, p := range ps {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && ready(&p) {
				running++
			}
			states = append(states, fmt.Sprintf("%s on %s: %s %s", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP))
		}
		return running == 6, strings.Join(states, "; ")
	})
	perNode := map[string]int{}
	onNode := map[string]string{}
	for _, p := range webPods() {
		perNode[p.Spec.NodeName]++
		onNode[p.Spec.NodeName] = p.Name
	}
	if perNode["troupe-a"] != 3 || perNode["troupe-b"] != 3 {
		t.Errorf("pods per node: %v, want 3 and 3", perNode)
	}

	// kubectl logs and exec reach a pod on each node, through the API
	// server and the node's kubelet API.
	for _, node := range []string{"troupe-a", "troupe-b"} {
		pod := onNode[node]
		out, err := cp.Kubectl(ctx, "logs", pod)
		if err != nil || strings.TrimSpace(string(out)) != "hello from "+pod {
			t.Errorf("kubectl logs %s (on %s): %q, %v", pod, node, out, err)
		}
		out, err = cp.Kubectl(ctx, "exec", pod, "--", "sh", "-c", "hostname; exit 3")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.HasPrefix(string(out), pod+"\n") {
			t.Errorf("kubectl exec %s (on %s): %q, %v; want its hostname and exit 3", pod, node, out, err)
		}
	}

	// A container that exits is restarted, and its restartCount grows.
	crash := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crash", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": "troupe-b"},
			Containers:                    []corev1.Container{{Name: "c", Image: image, Command: []string{"sh", "-c", "sleep 0.3; exit 1"}}},
		},
	}
	if _, err := kube.CoreV1().Pods("default").Create(ctx, crash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "crash restarted twice", func() (bool, string) {
		p, err := kube.CoreV1().Pods("default").Get(ctx, "crash", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 2, fmt.Sprintf("%+v", cs)
	})
	if err := kube.CoreV1().Pods("default").Delete(ctx, "crash", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Draining a node evicts its pods, and removes what they left there.
	if out, err := cp.Kubectl(ctx, "drain", "troupe-a", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2m"); err != nil {
		t.Fatalf("kubectl drain: %v: %s", err, out)
	}
	eventually(t, 30*time.Second, "troupe-a has nothing left after its drain", func() (bool, string) {
		left := nodes[0].leftovers(t)
		return len(left) == 0, strings.Join(left, "; ")
	})
	if out, err := cp.Kubectl(ctx, "uncordon", "troupe-a"); err != nil {
		t.Fatalf("kubectl uncordon: %v: %s", err, out)
	}

	// Scaling to 0 leaves no container, cgroup or overlay behind.
	scaleDeployment(t, cp, "web", 0)
	waitNoPods(t, cp, "", 2*time.Minute)
	for _, n := range nodes {
		eventually(t, 30*time.Second, n.name+" has nothing left", func() (bool, string) {
			left := n.leftovers(t)
			return len(left) == 0, strings.Join(left, "; ")
		})
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// leftovers lists what is left on the node of the pods it ran: troupe
// containers, cgroups under its cgroup parent, mounts under its daemon's
// directory, sandboxes, ports of its bridge and pod network leases.
func (n *testNode) leftovers(t testing.TB) []string {
	var left []string
	cs, err := n.d.Client.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if _, _, ok := podid.Parse(c.ID); ok {
			left = append(left, "container "+c.ID)
		}
	}
	for _, hier := range []string{"memory", "pids", "cpu,cpuacct", "freezer"} {
		entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", hier, n.d.CgroupParent))
		for _, e := range entries {
			if e.IsDir() {
				left = append(left, "cgroup "+hier+n.d.CgroupParent+"/"+e.Name())
			}
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// The sandboxes' mount namespace is the node's, as its bridge is:
	// the agent keeps it while it runs.
	space := filepath.Join(n.d.Dir, "kubelet-run", "sandboxes.mnt")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], n.d.Dir+"/") && f[4] != space {
			left = append(left, "mount "+f[4])
		}
	}
	sandboxes, _ := filepath.Glob(filepath.Join(n.d.Dir, "kubelet-run", "sandboxes", "*"))
	for _, s := range sandboxes {
		left = append(left, "sandbox "+filepath.Base(s))
	}
	// A pod's veth goes with its network namespace, which the kernel
	// destroys in the background once nothing holds it: long after the
	// sandbox's removal when a thousand go at once.
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", n.bridge, "brif"))
	for _, p := range ports {
		left = append(left, "bridge port "+p.Name())
	}
	leases, _ := filepath.Glob(filepath.Join(n.d.Dir, "kubelet", "network", "leases", "*", "*", "*.*.*.*"))
	for _, l := range leases {
		left = append(left, "lease "+filepath.Base(l))
	}
	return left
}

// waitNodeReady waits until n nodes are Ready.
func waitNodeReady(t testing.TB, cp *controlplane.ControlPlane, n int) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("%d nodes Ready", n), func() (bool, string) {
		ns, err := cp.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, node := range ns.Items {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == n, fmt.Sprintf("%d of %d nodes ready", ready, len(ns.Items))
	})
}

// waitNoPods waits until no pod of the default namespace matches
// selector.
func waitNoPods(t testing.TB, cp *controlplane.ControlPlane, selector string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "no pod left", func() (bool, string) {
		ps, err := cp.Client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		return len(ps.Items) == 0, fmt.Sprintf("%d pods", len(ps.Items))
	})
}

// runIP runs ip(8) for a cleanup, whose failure (the link is gone) does
// not matter.
func runIP(args ...string) { _ = exec.Command("ip", args...).Run() }

// createDeployment creates Deployment name of replicas pods labelled
// app=name, each with spec.
func createDeployment(t testing.TB, cp *controlplane.ControlPlane, name string, replicas int32, spec corev1.PodSpec) {
	t.Helper()
	sel := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: spec},
		},
	}
	if _, err := cp.Client.AppsV1().Deployments("default").Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// scaleDeployment sets Deployment name's replicas.
func scaleDeployment(t testing.TB, cp *controlplane.ControlPlane, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	s, err := cp.Client.AppsV1().Deployments("default").GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	// Unconditional: the deployment controller writes the Deployment's
	// status meanwhile, and its resource version with it.
	s.ResourceVersion = ""
	if _, err := cp.Client.AppsV1().Deployments("default").UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
