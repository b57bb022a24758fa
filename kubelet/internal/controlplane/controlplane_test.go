package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// TestVersionIsPinned keeps Version and the module hack/kube-binaries.sh
// builds from in step: a bump of one alone would make the tests look for
// binaries the script never builds.
func TestVersionIsPinned(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "hack", "kube-build", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\tk8s.io/kubernetes " + Version + " "
	if !strings.Contains(string(data), want) {
		t.Errorf("hack/kube-build/go.mod does not require k8s.io/kubernetes %s", Version)
	}
}

// TestControlPlane starts the control plane and shows each part at work:
// the API server stores a Node, the scheduler binds a pod to it (which stays
// Pending: no agent runs it yet), the controller manager turns a Deployment
// into a ReplicaSet and its pods, and the admin kubeconfig works for
// client-go and kubectl alike.
func TestControlPlane(t *testing.T) {
	cp := StartTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	core := cp.Client.CoreV1()

	node := testNode("troupe-test-node")
	if _, err := core.Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	// Status as a kubelet posts it: a Ready node with room for pods. Without
	// allocatable pods the scheduler finds no room on it.
	// The node lifecycle controller taints a new node meanwhile: a
	// conflict is retried on the node as it is then.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := core.Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status = testNodeStatus()
		_, err = core.Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("update node status: %v", err)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "waiting", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
		}}},
	}
	if _, err := core.Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	t.Run("scheduler binds the pod", func(t *testing.T) {
		err := poll(ctx, func(ctx context.Context) (bool, string, error) {
			p, err := core.Pods("default").Get(ctx, "waiting", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			return p.Spec.NodeName == node.Name, fmt.Sprintf("nodeName %q, conditions %v", p.Spec.NodeName, p.Status.Conditions), nil
		})
		if err != nil {
			t.Fatalf("pod not bound to %s: %v", node.Name, err)
		}
	})

	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "busybox", Command: []string{"httpd", "-f"},
				}}},
			},
		},
	}
	if _, err := cp.Client.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	t.Run("controller manager makes the deployment's pods", func(t *testing.T) {
		err := poll(ctx, func(ctx context.Context) (bool, string, error) {
			rss, err := cp.Client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, "", err
			}
			if len(rss.Items) != 1 || !ownedBy(rss.Items[0].OwnerReferences, "Deployment", "web") {
				return false, fmt.Sprintf("%d replica sets", len(rss.Items)), nil
			}
			rs := rss.Items[0].Name
			pods, err := core.Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, "", err
			}
			bound := 0
			for _, p := range pods.Items {
				if ownedBy(p.OwnerReferences, "ReplicaSet", rs) && p.Spec.NodeName == node.Name {
					bound++
				}
			}
			return bound == int(replicas), fmt.Sprintf("replica set %s, %d pods, %d of them its own and bound", rs, len(pods.Items), bound), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pods stay pending", func(t *testing.T) {
		pods, err := core.Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1+int(replicas) {
			t.Errorf("%d pods, want %d", len(pods.Items), 1+replicas)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending {
				t.Errorf("pod %s is %s, want Pending: nothing runs pods yet", p.Name, p.Status.Phase)
			}
		}
	})

	t.Run("kubeconfig", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != cp.Server {
			t.Errorf("kubeconfig server %s, want %s", cfg.Host, cp.Server)
		}
		out, err := cp.Kubectl(ctx, "get", "nodes", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != "node/"+node.Name {
			t.Errorf("kubectl get nodes: %q, want node/%s", got, node.Name)
		}
	})

	if err := cp.Exited(); err != nil {
		t.Errorf("a part of the control plane died: %v", err)
	}
}

// TestStop shows that Stop ends every process it started and removes the
// control plane's directory.
func TestStop(t *testing.T) {
	cp := StartTest(t)
	var pids []int
	for _, p := range cp.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, pid := range pids {
		// Stop reaped them: a pid still there would be another process's
		// only if it were used again this soon, which the kernel avoids.
		if _, ok := linuxtest.StartTime(pid); ok {
			t.Errorf("%s (pid %d) still runs after Stop", cp.procs[i].name, pid)
		}
	}
	if _, err := os.Stat(cp.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Stop: %v", cp.Dir, err)
	}
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
	}}
}

func testNodeStatus() corev1.NodeStatus {
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	return corev1.NodeStatus{
		Capacity:    room,
		Allocatable: room,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "TestReady", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
}

func ownedBy(refs []metav1.OwnerReference, kind, name string) bool {
	for _, r := range refs {
		if r.Kind == kind && r.Name == name && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// poll calls check until it reports done or ctx ends, and then names the
// last state check described.
func poll(ctx context.Context, check func(context.Context) (bool, string, error)) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		done, state, err := check(ctx)
		if state != "" {
			last = state
		}
		return done, err
	})
	if err != nil {
		return fmt.Errorf("%w; last seen: %s", err, last)
	}
	return nil
}
