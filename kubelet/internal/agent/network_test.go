package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
)

// TestPodWaitsForAnAddress runs a node whose pod CIDR has one pod address
// (a /30): its capacity is one pod, and a second pod bound to it anyway
// (its nodeName set, as the scheduler would not) waits for the address,
// its containers not started, until the first pod is deleted.
func TestPodWaitsForAnAddress(t *testing.T) {
	cp := controlplane.StartTest(t)
	image := daemontest.PushBusybox(t)
	n := startNode(t, cp, "troupe-ip", 4, 30)
	ctx := context.Background()
	kube := cp.Client
	waitNodeReady(t, cp, 1)

	node, err := kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Status.Capacity.Pods().Value(); got != 1 {
		t.Errorf("pod capacity of a node with one pod address = %d, want 1", got)
	}

	grace := int64(1)
	mk := func(name string) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: n.name, TerminationGracePeriodSeconds: &grace, AutomountServiceAccountToken: new(bool),
				Containers: []corev1.Container{{Name: "c", Image: image, Command: []string{"sleep", "100000"}}},
			},
		}
		if _, err := kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) *corev1.Pod {
		p, err := kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("first")
	eventually(t, time.Minute, "first Running", func() (bool, string) {
		p := get("first")
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", string(p.Status.Phase)
	})
	addr := get("first").Status.PodIP

	mk("second")
	eventually(t, time.Minute, "second told that it has no address", func() (bool, string) {
		p := get("second")
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReadyToStartContainers {
				return c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "no IP addresses available"),
					fmt.Sprintf("%s: %s", c.Status, c.Message)
			}
		}
		return false, "no PodReadyToStartContainers condition"
	})
	// Its setup is retried meanwhile, with backoff (2 s at most here):
	// its container must not start without the address.
	time.Sleep(5 * time.Second)
	if p := get("second"); p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
		t.Fatalf("second, with no address left: phase %s, address %q; want Pending without one", p.Status.Phase, p.Status.PodIP)
	}

	if err := kube.CoreV1().Pods("default").Delete(ctx, "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "second Running with the first's address", func() (bool, string) {
		p := get("second")
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP == addr,
			fmt.Sprintf("%s, address %q", p.Status.Phase, p.Status.PodIP)
	})
	if err := kube.CoreV1().Pods("default").Delete(ctx, "second", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNoPods(t, cp, "", time.Minute)
	eventually(t, 30*time.Second, n.name+" has nothing left", func() (bool, string) {
		left := n.leftovers(t)
		return len(left) == 0, strings.Join(left, "; ")
	})
}
