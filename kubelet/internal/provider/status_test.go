package provider

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestFirstStatusHeldBack: a pod whose start takes longer than
// firstStatusDelay has its ContainerCreating status told meanwhile, not
// before the delay; the status after the start follows it.
func TestFirstStatusHeldBack(t *testing.T) {
	// No daemon answers there: the worker's calls to troupe fail at once.
	cli, err := client.New("unix://" + filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	p, err := New(Config{
		Troupe:  cli,
		Sandbox: func(*corev1.Pod) (api.StartRequest, error) { return api.StartRequest{}, nil },
		Prepare: func(ctx context.Context, _ *corev1.Pod) (Starter, error) {
			select { // a slow start: an image pull, say
			case <-release:
			case <-ctx.Done():
			}
			return nil, errors.New("prepare: given up")
		},
		Cleanup: func(types.UID) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told []*corev1.Pod
	var at []time.Duration
	start := time.Now()
	p.NotifyPods(t.Context(), func(pod *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, pod)
		at = append(at, time.Since(start))
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "slow", UID: "uid-slow"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := p.CreatePod(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.worker("ns", "slow").stop() })
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(told)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no status told within 10 s of a start that hangs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	first, firstAt := told[0], at[0]
	mu.Unlock()
	if firstAt < firstStatusDelay {
		t.Errorf("the first status was told after %v, before firstStatusDelay (%v)", firstAt, firstStatusDelay)
	}
	if cs := first.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "ContainerCreating" {
		t.Fatalf("first status told: %+v, want container c ContainerCreating", first.Status.ContainerStatuses)
	}
	close(release)
	for count() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no status told after the start failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
