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
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/daemontest"
	"github.com/troupe-run/troupe/kubelet/internal/podnet"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/runtime/podns"
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
	// Watched, not polled: a list of 1000 pods five times a second cost
	// the API server and this process about 15 s of CPU in a 100 s run.
	type times struct{ bound, running time.Time }
	var mu sync.Mutex
	pods := map[string]*times{}
	addrs := map[string]string{} // pod by address
	running := 0
	allRunning := make(chan struct{})
	see := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
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
			if running == n {
				close(allRunning)
			}
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace("default"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "app=bench" }))
	informer := factory.Core().V1().Pods().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: see, UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		b.Fatal(err)
	}
	stopWatch := make(chan struct{})
	stop := sync.OnceFunc(func() {
		close(stopWatch)
		factory.Shutdown()
	})
	defer stop()
	factory.Start(stopWatch)
	if !cache.WaitForCacheSync(stopWatch, informer.HasSynced) {
		b.Fatal("the pod informer did not sync")
	}

	b.ResetTimer()
	cpu := sampleCPU()
	start := time.Now()
	scaleDeployment(b, cp, "bench", int32(n))
	select {
	case <-allRunning:
	case <-time.After(10 * time.Minute):
		mu.Lock()
		left := n - running
		mu.Unlock()
		b.Fatalf("%d of %d pods not Running after 10 minutes", left, n)
	}
	total := time.Since(start)
	b.StopTimer()
	stop() // no handler runs after this
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
	bound := map[string]time.Time{}
	seen := map[string]time.Time{}
	for name, t := range pods {
		bound["default/"+name], seen["default/"+name] = t.bound, t.running
	}
	logStages(b, filepath.Join(node.d.Dir, "agent.log"), bound, seen)

	scaleDeployment(b, cp, "bench", 0)
	gone := time.Now()
	waitNoPods(b, cp, "app=bench", 10*time.Minute)
	b.ReportMetric(time.Since(gone).Seconds(), "s-to-scale-to-0")
	// virtual-kubelet removes a pod from the API server once its grace
	// period is over, while the agent may still be tearing it down: the
	// direct starts below ran 88 and 94 s against 38-49 s while they
	// overlapped that.
	eventually(b, 10*time.Minute, "the node clean after scaling to 0", func() (bool, string) {
		left := node.leftovers(b)
		if len(left) == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("%d left, first %s", len(left), left[0])
	})
	b.ReportMetric(time.Since(gone).Seconds(), "s-to-node-clean")

	// The same pods through troupe's API directly.
	took, used := directPods(b, node, image, n)
	b.ReportMetric(took.Seconds(), "s-troupe-direct")
	b.ReportMetric(used.busy.Seconds()*1000/float64(n), "cpu-ms/pod-direct")
	b.Logf("%d pods through troupe directly: %v", n, used)
}

// directPods starts n pods through troupe's API as the agent does (a
// sandbox of pinned namespaces, its address on a pod network, a container
// joining it), all at once, and returns the time until all run and the
// CPU it took; it removes them after.
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
	sandboxes := &podns.Manager{Dir: filepath.Join(node.d.Dir, "direct-sandboxes"), NoIPv6: true, Apart: true}
	defer sandboxes.Close()
	var mu sync.Mutex
	stages := map[string][]time.Duration{}
	took := allAtOnce(b, n, "direct pods", func(i int) error {
		id := fmt.Sprintf("direct-%d", i)
		t0 := time.Now()
		sb, err := sandboxes.Make(id, id)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := network.Add(ctx, id, sb.Network); err != nil {
			return err
		}
		t2 := time.Now()
		if err := startJoined(ctx, cli, image, id, sb); err != nil {
			return err
		}
		t3 := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for k, d := range map[string]time.Duration{"sandbox": t1.Sub(t0), "network": t2.Sub(t1), "start": t3.Sub(t2), "total": t3.Sub(t0)} {
			stages[k] = append(stages[k], d)
		}
		return nil
	})
	used := cpu.until(sampleCPU())
	b.Log(stageTable(fmt.Sprintf("%d pods through troupe directly", n), stages, []string{"sandbox", "network", "start", "total"}))
	var wg sync.WaitGroup
	cs, _ := cli.List(ctx)
	for _, c := range cs {
		if strings.HasPrefix(c.ID, "direct-") {
			wg.Go(func() {
				cli.Delete(ctx, c.ID, true)
				id := strings.TrimSuffix(c.ID, "-c")
				network.Del(ctx, id, "")
				sandboxes.Remove(id)
			})
		}
	}
	wg.Wait()
	return took, used
}

// logStages logs where the pods' time from binding to Running went, from
// the agent's "pod running" lines: virtual-kubelet's queue (binding to
// CreatePod), the provider's stages, and the status's way back (the line
// to the pod seen Running).
func logStages(b *testing.B, agentLog string, bound, seen map[string]time.Time) {
	data, err := os.ReadFile(agentLog)
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"queue", "volumes", "sandbox", "network", "start", "waited", "total", "status"}
	stages := map[string][]time.Duration{}
	for line := range strings.Lines(string(data)) {
		if !strings.Contains(line, `msg="pod running"`) {
			continue
		}
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		at, err := time.Parse(time.RFC3339Nano, f["time"])
		if err != nil {
			b.Fatalf("agent log line %q: %v", line, err)
		}
		pod := f["pod"]
		if bound[pod].IsZero() {
			continue
		}
		for _, k := range names[1:7] {
			d, err := time.ParseDuration(f[k])
			if err != nil {
				b.Fatalf("agent log line %q: %s: %v", line, k, err)
			}
			stages[k] = append(stages[k], d)
		}
		total := stages["total"][len(stages["total"])-1]
		stages["queue"] = append(stages["queue"], at.Add(-total).Sub(bound[pod]))
		stages["status"] = append(stages["status"], seen[pod].Sub(at))
	}
	b.Log(stageTable(fmt.Sprintf("binding to Running, %d pods", len(stages["total"])), stages, names))
}

// stageTable shows the median, 95th percentile and maximum of each stage.
func stageTable(title string, stages map[string][]time.Duration, names []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (p50 / p95 / max):", title)
	for _, k := range names {
		ds := stages[k]
		fmt.Fprintf(&sb, "\n  %-8s %8v %8v %8v", k, median(ds).Round(time.Millisecond),
			percentile(ds, 0.95).Round(time.Millisecond), percentile(ds, 1).Round(time.Millisecond))
	}
	return sb.String()
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

// BenchmarkDirectPods starts N pods through troupe's API as the agent does,
// all at once, with no control plane: BenchmarkScaleDeployment's direct
// part alone.
func BenchmarkDirectPods(b *testing.B) {
	n := benchPods(b)
	image := daemontest.PushBusybox(b)
	d := daemontest.Start(b, daemontest.Options{Name: "direct"})
	if _, err := d.Client.PullImage(context.Background(), image, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	took, used := directPods(b, &testNode{name: "direct", d: d, bridge: fmt.Sprintf("trd%d", os.Getpid()%100000)}, image, n)
	b.StopTimer()
	b.ReportMetric(took.Seconds(), "s-troupe-direct")
	b.ReportMetric(used.busy.Seconds()*1000/float64(n), "cpu-ms/pod-direct")
	b.Logf("%d pods through troupe directly: %v", n, used)
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
	sandboxes := &podns.Manager{Dir: filepath.Join(d.Dir, "sandboxes"), NoIPv6: true, Apart: true}
	b.Cleanup(func() { sandboxes.Close() })
	sbs := make([]podns.Sandbox, n)
	run := func(what string, f func(i int) error) {
		b.ReportMetric(allAtOnce(b, n, what, f).Seconds(), "s-"+what)
	}
	run("sandboxes", func(i int) (err error) {
		id := fmt.Sprintf("s-%d", i)
		sbs[i], err = sandboxes.Make(id, id)
		return err
	})
	run("cni", func(i int) error {
		_, err := network.Add(ctx, fmt.Sprintf("s-%d", i), sbs[i].Network)
		return err
	})
	run("containers", func(i int) error { return startJoined(ctx, cli, image, fmt.Sprintf("s-%d", i), sbs[i]) })
	run("cni-del", func(i int) error { return network.Del(ctx, fmt.Sprintf("s-%d", i), "") })
	run("sandbox-removal", func(i int) error { return sandboxes.Remove(fmt.Sprintf("s-%d", i)) })
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

// startJoined starts container id-c in sandbox sb's namespaces.
func startJoined(ctx context.Context, cli *client.Client, image, id string, sb podns.Sandbox) error {
	join := podspec.Join(sb)
	_, err := cli.Start(ctx, id+"-c", api.StartRequest{Join: &join,
		ImageStart: api.ImageStart{Image: image, Entrypoint: &[]string{"sleep", "100000"}}})
	return err
}
