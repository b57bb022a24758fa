package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podnet"
)

// benchPods is how many pods BenchmarkScaleDeployment scales to:
// $TROUPE_KUBE_BENCH_PODS, else 1000.
func benchPods(b *testing.B) int {
	n := 1000
	if s := os.Getenv("TROUPE_KUBE_BENCH_PODS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("TROUPE_KUBE_BENCH_PODS=%q", s)
		}
	}
	return n
}

// BenchmarkScaleDeployment scales a Deployment from 0 to N replicas on one
// troupe node, control plane on the same machine, and reports how long
// until all N run, and the stages: creation to binding (the control
// plane) and binding to Running (the agent and troupe). It then starts the
// same N pods through troupe's API directly (sandbox, address, container),
// for the share that is troupe's. Run it once:
//
//	make kube-bench
func BenchmarkScaleDeployment(b *testing.B) {
	n := benchPods(b)
	cp := controlplane.StartTest(b)
	image := daemontest.PushBusybox(b)
	node := startNode(b, cp, "troupe-bench", 9, 21)
	ctx := context.Background()
	kube := cp.Client
	// The image is in the store before the clock starts: pulls are not
	// what is measured.
	if _, err := node.d.Client.PullImage(ctx, image, nil); err != nil {
		b.Fatal(err)
	}
	waitNodeReady(b, cp, 1)

	grace := int64(1)
	createDeployment(b, cp, "bench", 0, corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		AutomountServiceAccountToken:  new(bool),
		Containers: []corev1.Container{{
			Name: "c", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sleep", "100000"},
		}},
	})
	b.ResetTimer()
	cpu := sampleCPU()
	start := time.Now()
	scaleDeployment(b, cp, "bench", int32(n))
	// Polled rather than watched: a list every 200ms costs the API server
	// little next to 1000 pods' writes, and cannot lose an event.
	type times struct{ bound, running time.Time }
	pods := map[string]*times{}
	addrs := map[string]string{} // pod by address
	running := 0
	deadline := time.Now().Add(10 * time.Minute)
	for running < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d pods Running after 10 minutes", running, n)
		}
		time.Sleep(200 * time.Millisecond)
		list, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bench", ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for i := range list.Items {
			p := &list.Items[i]
			t := pods[p.Name]
			if t == nil {
				t = &times{}
				pods[p.Name] = t
			}
			if t.bound.IsZero() && p.Spec.NodeName != "" {
				t.bound = now
			}
			if t.running.IsZero() && p.Status.Phase == corev1.PodRunning {
				t.running = now
				running++
				if holder, taken := addrs[p.Status.PodIP]; taken || p.Status.PodIP == "" {
					b.Errorf("pod %s is Running with address %q, that of %q", p.Name, p.Status.PodIP, holder)
				}
				addrs[p.Status.PodIP] = p.Name
			}
		}
	}
	total := time.Since(start)
	b.StopTimer()
	used := cpu.until(sampleCPU())
	b.Logf("scale to %d: %v", n, used)
	b.ReportMetric(used.busy.Seconds()*1000/float64(n), "cpu-ms/pod")
	var toBind, toRun []time.Duration
	var lastBound time.Time
	for _, t := range pods {
		toBind = append(toBind, t.bound.Sub(start))
		toRun = append(toRun, t.running.Sub(t.bound))
		if t.bound.After(lastBound) {
			lastBound = t.bound
		}
	}
	b.ReportMetric(total.Seconds(), "s-to-all-running")
	b.ReportMetric(float64(n)/total.Seconds(), "pods/s")
	b.ReportMetric(lastBound.Sub(start).Seconds(), "s-to-all-bound")
	b.ReportMetric(median(toRun).Seconds()*1000, "ms-bound-to-running-p50")
	b.ReportMetric(percentile(toRun, 0.95).Seconds()*1000, "ms-bound-to-running-p95")

	scaleDeployment(b, cp, "bench", 0)
	gone := time.Now()
	waitNoPods(b, cp, "app=bench", 10*time.Minute)
	b.ReportMetric(time.Since(gone).Seconds(), "s-to-scale-to-0")

	// The same pods through troupe's API directly.
	took, used := directPods(b, node, image, n)
	b.ReportMetric(took.Seconds(), "s-troupe-direct")
	b.ReportMetric(used.busy.Seconds()*1000/float64(n), "cpu-ms/pod-direct")
	b.Logf("%d pods through troupe directly: %v", n, used)
}

// directPods starts n pods through troupe's API as the agent does (a
// sandbox, its address on a pod network, a container joining it), all at
// once, and returns the time until all run and the CPU it took; it
// removes them after.
func directPods(b *testing.B, node *testNode, image string, n int) (time.Duration, cpuWindow) {
	ctx := context.Background()
	cli := node.d.Client
	network, err := podnet.New(podnet.Config{Name: "troupe-direct", Bridge: node.bridge + "d",
		Subnet: netip.MustParsePrefix("10.99.0.0/21"), StateDir: filepath.Join(node.d.Dir, "direct-net"), LoopbackUp: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { runIP("link", "del", node.bridge+"d") })
	cpu := sampleCPU()
	took := allAtOnce(b, n, "direct pods", func(i int) error {
		id := fmt.Sprintf("direct-%d", i)
		pid, err := startSandbox(ctx, cli, image, id)
		if err != nil {
			return err
		}
		if _, err := network.Add(ctx, id, fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
			return err
		}
		return startJoined(ctx, cli, image, id)
	})
	used := cpu.until(sampleCPU())
	var wg sync.WaitGroup
	cs, _ := cli.List(ctx)
	for _, c := range cs {
		if strings.HasPrefix(c.ID, "direct-") {
			wg.Go(func() {
				cli.Delete(ctx, c.ID, true)
				network.Del(ctx, c.ID, "")
			})
		}
	}
	wg.Wait()
	return took, used
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 0.5) }

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// BenchmarkDirectStages starts N pods through troupe's API as the agent
// does, one stage after the other, all N at once within a stage:
// sandboxes, their CNI ADD, containers joining them, CNI DEL. It shows
// which stage of BenchmarkScaleDeployment's direct path costs what.
func BenchmarkDirectStages(b *testing.B) {
	n := benchPods(b)
	image := daemontest.PushBusybox(b)
	d := daemontest.Start(b, daemontest.Options{Name: "stages"})
	ctx := context.Background()
	cli := d.Client
	if _, err := cli.PullImage(ctx, image, nil); err != nil {
		b.Fatal(err)
	}
	network, err := podnet.New(podnet.Config{Name: "troupe-stages", Bridge: "trstages", LoopbackUp: true,
		Subnet: netip.MustParsePrefix("10.98.0.0/21"), StateDir: filepath.Join(d.Dir, "net")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { runIP("link", "del", "trstages") })
	pids := make([]int, n)
	run := func(what string, f func(i int) error) {
		b.ReportMetric(allAtOnce(b, n, what, f).Seconds(), "s-"+what)
	}
	run("sandboxes", func(i int) (err error) {
		pids[i], err = startSandbox(ctx, cli, image, fmt.Sprintf("s-%d", i))
		return err
	})
	run("cni", func(i int) error {
		_, err := network.Add(ctx, fmt.Sprintf("s-%d", i), fmt.Sprintf("/proc/%d/ns/net", pids[i]))
		return err
	})
	run("containers", func(i int) error { return startJoined(ctx, cli, image, fmt.Sprintf("s-%d", i)) })
	run("cni-del", func(i int) error { return network.Del(ctx, fmt.Sprintf("s-%d", i), "") })
}

// allAtOnce runs f(0) to f(n-1) at once and returns how long they took
// together; their errors fail b.
func allAtOnce(b *testing.B, n int, what string, f func(i int) error) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := f(i); err != nil {
				b.Error(what, err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// startSandbox starts sandbox id as the agent does (a process holding new
// namespaces) and returns its init's pid.
func startSandbox(ctx context.Context, cli *client.Client, image, id string) (int, error) {
	sb, err := cli.Start(ctx, id, api.StartRequest{ImageStart: api.ImageStart{Image: image,
		Entrypoint: &[]string{"sleep", "2147483647"}, Hostname: id}})
	if err != nil {
		return 0, err
	}
	return sb.Processes[0].Pid, nil
}

// startJoined starts container id-c in sandbox id's namespaces.
func startJoined(ctx context.Context, cli *client.Client, image, id string) error {
	_, err := cli.Start(ctx, id+"-c", api.StartRequest{Join: &api.Join{Network: id, IPC: id, UTS: id},
		ImageStart: api.ImageStart{Image: image, Entrypoint: &[]string{"sleep", "100000"}}})
	return err
}
