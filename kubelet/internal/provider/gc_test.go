package provider

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
	"github.com/troupe-run/troupe/runtime/podns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
)

// TestCollectSparesPodsArriving: a pod that arrives while the garbage
// collector looks (its worker made, its sandbox and volumes with it, not
// yet in the informer's list) keeps them. The collector once listed the
// pods first and the sandboxes after, and removed the sandbox of one of
// 1000 pods of a burst: the pod never got its address.
func TestCollectSparesPodsArriving(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Name: "gc"})
	image := daemontest.PushBusybox(t)
	sandboxes := &podns.Manager{Dir: filepath.Join(d.Dir, "sandboxes"), Apart: true}
	t.Cleanup(func() { linuxtest.RemoveSandboxes(t, sandboxes) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	arriving := pod("arriving", image, corev1.RestartPolicyAlways, "sleep", "1000")
	arriving.UID = types.UID("0b4d1c52-5c44-4bd4-9b52-1f4a4d8f0e01")
	var p *Provider
	// Prepared is listed among what is on the node: the pod arrives then.
	arrive := func() ([]types.UID, error) {
		if err := p.CreatePod(ctx, arriving); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, ok, err := sandboxes.Get(string(arriving.UID)); err != nil || ok {
				return []types.UID{arriving.UID}, err
			}
			if time.Now().After(deadline) {
				t.Fatal("the arriving pod's sandbox was not made within 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var err error
	p, err = New(Config{
		Troupe:    d.Client,
		Pods:      corev1listers.NewPodLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})),
		Sandboxes: sandboxes,
		Hostname:  func(pod *corev1.Pod) (string, error) { return pod.Name, nil },
		Prepare: func(ctx context.Context, pod *corev1.Pod) (Starter, error) {
			return func(c *corev1.Container, sandbox podns.Sandbox, _ netip.Addr) (api.StartRequest, error) {
				join := podspec.Join(sandbox)
				return api.StartRequest{Join: &join, ImageStart: api.ImageStart{Image: c.Image, Pull: api.PullMissing, Entrypoint: &c.Command}}, nil
			}, nil
		},
		Cleanup:  func(types.UID) error { return nil },
		Prepared: arrive,
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(30 * time.Second):
			t.Error("the provider did not stop within 30s")
		}
	})

	if err := p.collectOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := sandboxes.Get(string(arriving.UID)); err != nil || !ok {
		t.Fatalf("the arriving pod's sandbox after a collection: %v, %v", ok, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := p.GetPodStatus(ctx, "default", "arriving")
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the arriving pod is not Running within a minute: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
