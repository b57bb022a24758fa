package provider

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podid"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/runtime/podns"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// testNode is a troupe node run by the provider on a real control plane.
type testNode struct {
	cp    *controlplane.ControlPlane
	d     *daemontest.Daemon
	name  string
	image string
	prov  *Provider
	// sandboxes outlive a run of the provider, as the agent's do.
	sandboxes *podns.Manager
}

// startNode starts a control plane, a troupe daemon and the provider as
// node "troupe-1", and pushes a busybox image to a local registry.
func startNode(t *testing.T) *testNode {
	t.Helper()
	cp := controlplane.StartTest(t)
	d := daemontest.Start(t, daemontest.Options{Name: "provider"})
	n := newTestNode(t, cp, d)
	stop := n.run(t)
	t.Cleanup(stop)
	return n
}

// newTestNode is node "troupe-1" of daemon d, with a busybox image pushed
// to a local registry; its provider is not running yet.
func newTestNode(t *testing.T, cp *controlplane.ControlPlane, d *daemontest.Daemon) *testNode {
	t.Helper()
	n := &testNode{cp: cp, d: d, name: "troupe-1", image: daemontest.PushBusybox(t),
		sandboxes: &podns.Manager{Dir: filepath.Join(d.Dir, "sandboxes"), Apart: true}}
	// The sandboxes of pods still running at the end, after the provider
	// stopped: the daemon's cleanup would find them mounted.
	t.Cleanup(func() { linuxtest.RemoveSandboxes(t, n.sandboxes) })
	return n
}

// run runs the provider and virtual-kubelet's node for n, until the
// function it returns is called.
func (n *testNode) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	spec, err := NodeSpec(ctx, n.d.Client, NodeOptions{Name: n.name, IP: "127.0.0.1", Port: 10250, MaxPods: 110, KubeletVersion: "v1.37.2"})
	if err != nil {
		t.Fatal(err)
	}
	vk, err := nodeutil.NewNode(n.name, func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		p, err := New(Config{
			Troupe: n.d.Client, NodeIP: "127.0.0.1", Pods: pc.Pods,
			Sandboxes: n.sandboxes,
			Hostname:  func(pod *corev1.Pod) (string, error) { return pod.Name, nil },
			Prepare: func(ctx context.Context, pod *corev1.Pod) (Starter, error) {
				return func(c *corev1.Container, sandbox podns.Sandbox, _ netip.Addr) (api.StartRequest, error) {
					join := podspec.Join(sandbox)
					req := api.StartRequest{Join: &join,
						ImageStart: api.ImageStart{Image: c.Image, Pull: api.PullMissing, Args: c.Args}}
					if c.Command != nil {
						req.Entrypoint = &c.Command
					}
					return req, nil
				}, nil
			},
			Cleanup: func(types.UID) error { return nil },
			Backoff: 500 * time.Millisecond, MaxBackoff: 2 * time.Second,
		})
		n.prov = p
		return p, NodeProvider{Troupe: n.d.Client}, err
	}, nodeutil.WithClient(n.cp.Client), func(c *nodeutil.NodeConfig) error {
		c.NodeSpec = *spec
		c.NumWorkers = 4
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 2)
	go func() { runDone <- n.prov.Run(ctx) }()
	go func() { runDone <- vk.Run(ctx) }()
	stop = func() {
		cancel()
		for range 2 {
			select {
			case <-runDone:
			case <-time.After(30 * time.Second):
				t.Error("the provider or the node did not stop within 30s")
				return
			}
		}
	}
	if err := vk.WaitReady(ctx, time.Minute); err != nil {
		stop()
		t.Fatal(err)
	}
	return stop
}

func pod(name, image string, policy corev1.RestartPolicy, cmd ...string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: "troupe-1", RestartPolicy: policy, TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken: new(bool),
			Containers:                   []corev1.Container{{Name: "c", Image: image, Command: cmd}},
		},
	}
}

// waitPod polls pod name until ok says yes, failing after a minute with its
// last status.
func (n *testNode) waitPod(t *testing.T, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p, err := n.cp.Client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if ok(p) {
				return p
			}
		} else if apierrors.IsNotFound(err) && ok(nil) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s: not %s within a minute; last: %+v", name, what, last)
	return nil
}

func TestPodLifecycle(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	pods := n.cp.Client.CoreV1().Pods("default")

	tests := []struct {
		name   string
		policy corev1.RestartPolicy
		cmd    []string
		phase  corev1.PodPhase
		check  func(t *testing.T, p *corev1.Pod)
	}{
		{"runs", corev1.RestartPolicyAlways, []string{"sleep", "1000"}, corev1.PodRunning, func(t *testing.T, p *corev1.Pod) {
			if !podReady(p) {
				t.Errorf("running pod not Ready: %+v", p.Status.Conditions)
			}
		}},
		{"succeeds", corev1.RestartPolicyOnFailure, []string{"true"}, corev1.PodSucceeded, func(t *testing.T, p *corev1.Pod) {
			term := p.Status.ContainerStatuses[0].State.Terminated
			if term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
				t.Errorf("state %+v", p.Status.ContainerStatuses[0].State)
			}
		}},
		{"fails", corev1.RestartPolicyNever, []string{"sh", "-c", "exit 3"}, corev1.PodFailed, func(t *testing.T, p *corev1.Pod) {
			term := p.Status.ContainerStatuses[0].State.Terminated
			if term == nil || term.ExitCode != 3 || term.Reason != "Error" {
				t.Errorf("state %+v", p.Status.ContainerStatuses[0].State)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pods.Create(ctx, pod(tt.name, n.image, tt.policy, tt.cmd...), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			p := n.waitPod(t, tt.name, string(tt.phase), func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == tt.phase })
			tt.check(t, p)
		})
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestRestartCountGrows(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	pods := n.cp.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("crash", n.image, corev1.RestartPolicyAlways, "sh", "-c", "sleep 0.2; exit 2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := n.waitPod(t, "crash", "restarted twice", func(p *corev1.Pod) bool {
		return p != nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 {
		t.Errorf("lastState %+v", p.Status.ContainerStatuses[0].LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running (restarting)", p.Status.Phase)
	}

	// Deleting it removes its containers from troupe.
	if err := pods.Delete(ctx, "crash", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitPod(t, "crash", "gone", func(p *corev1.Pod) bool { return p == nil })
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := n.d.Client.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, c := range cs {
			if _, _, ok := podid.Parse(c.ID); ok {
				left = append(left, c.ID)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers left after the pod's deletion: %s", strings.Join(left, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAgentRestartAdoptsPods stops the provider with a pod running and
// one restarting, and starts another: the running container is adopted
// as it is (same pid, no restart), and an exit while no agent ran is
// seen.
func TestAgentRestartAdoptsPods(t *testing.T) {
	cp := controlplane.StartTest(t)
	d := daemontest.Start(t, daemontest.Options{Name: "adopt"})
	n := newTestNode(t, cp, d)
	stop := n.run(t)
	ctx := context.Background()
	pods := cp.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("steady", n.image, corev1.RestartPolicyAlways, "sleep", "1000"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, pod("ender", n.image, corev1.RestartPolicyOnFailure, "sh", "-c", "while [ ! -e /tmp/end ]; do sleep 0.1; done; exit 4"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning && podReady(p) }
	before := n.waitPod(t, "steady", "running", running)
	ender := n.waitPod(t, "ender", "running", running)
	stop()

	// While no agent runs, ender's container exits.
	if _, err := d.Client.Exec(ctx, podid.Container(ender.UID, "c"), api.ExecRequest{Args: []string{"touch", "/tmp/end"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.run(t))
	n.waitPod(t, "ender", "restarted", func(p *corev1.Pod) bool {
		return p != nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount == 1 &&
			p.Status.ContainerStatuses[0].State.Running != nil
	})
	after := n.waitPod(t, "steady", "running", running)
	b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if a.RestartCount != 0 || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
		t.Errorf("steady's container was not adopted as it ran: before %+v, after %+v", b, a)
	}
	c, err := d.Client.Get(ctx, podid.Container(after.UID, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Created.After(before.Status.ContainerStatuses[0].State.Running.StartedAt.Add(time.Second)) {
		t.Errorf("steady's container was made anew at %s", c.Created)
	}
}

// TestDaemonRestartKeepsPods restarts the troupe daemon under a running
// pod: the pod runs on in the same container, and an exit after the
// restart is still seen (the event stream is followed anew) and restarts
// the container.
func TestDaemonRestartKeepsPods(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	pods := n.cp.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("survivor", n.image, corev1.RestartPolicyAlways,
		"sh", "-c", "while [ ! -e /tmp/end ]; do sleep 0.1; done; rm /tmp/end; exit 5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := n.waitPod(t, "survivor", "running", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	n.d.Restart(t)
	if _, err := n.d.Client.Exec(ctx, podid.Container(before.UID, "c"), api.ExecRequest{Args: []string{"touch", "/tmp/end"}}); err != nil {
		t.Fatal(err)
	}
	after := n.waitPod(t, "survivor", "restarted after its exit", func(p *corev1.Pod) bool {
		return p != nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount == 1 &&
			p.Status.ContainerStatuses[0].State.Running != nil
	})
	// The new daemon is not the init's parent: it cannot know the status.
	last := after.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.Reason != "ContainerStatusUnknown" {
		t.Errorf("lastState %+v, want ContainerStatusUnknown", after.Status.ContainerStatuses[0].LastTerminationState)
	}
}

// TestPodSandbox runs a pod: its container joins the namespaces of the
// pod's sandbox (bind mounts, no process), and deleting the pod removes
// the sandbox.
func TestPodSandbox(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	pods := n.cp.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("boxed", n.image, corev1.RestartPolicyAlways, "sleep", "1000"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := n.waitPod(t, "boxed", "running", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	sb, ok, err := n.sandboxes.Get(string(p.UID))
	if err != nil || !ok {
		t.Fatalf("the pod's sandbox: %v, %v", ok, err)
	}
	c, err := n.d.Client.Get(ctx, podid.Container(p.UID, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Join == nil || *c.Join != podspec.Join(sb) {
		t.Errorf("container's joins %+v, want %+v", c.Join, podspec.Join(sb))
	}
	for _, ns := range []struct{ name, pinned string }{{"net", sb.Network}, {"ipc", sb.IPC}, {"uts", sb.UTS}} {
		var in, pinned syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/%s", c.Processes[0].Pid, ns.name), &in); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Stat(ns.pinned, &pinned); err != nil {
			t.Fatal(err)
		}
		if in.Ino != pinned.Ino {
			t.Errorf("the container's %s namespace is not its sandbox's", ns.name)
		}
	}
	if err := pods.Delete(ctx, "boxed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitPod(t, "boxed", "gone", func(p *corev1.Pod) bool { return p == nil })
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids, err := n.sandboxes.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxes left after the pod's deletion: %v", ids)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
