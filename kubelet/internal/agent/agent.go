// Package agent is troupe-kubelet: it makes one troupe daemon a node of a
// Kubernetes cluster. It registers the Node, keeps its lease, runs the
// pods the scheduler binds to it (package provider), gives them addresses
// on the node's pod network (package podnet) and serves the kubelet API
// for logs and exec (package kubeletapi).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-run/troupe/http/client"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"

	"github.com/troupe-run/troupe/kubelet/internal/podnet"
	"github.com/troupe-run/troupe/kubelet/internal/provider"
)

// Options configure the agent; Defaults fills in what is left out.
type Options struct {
	// NodeName is the Node's name; default the host's name.
	NodeName string
	// Kubeconfig is the agent's kubeconfig; empty: $KUBECONFIG.
	Kubeconfig string
	// Troupe is the troupe daemon's address (unix:///path or
	// tcp://127.0.0.1:PORT) and TroupeTokenFile its token, if it wants one.
	Troupe          string
	TroupeTokenFile string
	// NodeIP is the node's InternalIP, the pods' hostIP; the kubelet API
	// listens on NodeIP:Port.
	NodeIP string
	Port   int
	// TLSCertFile and TLSKeyFile are the kubelet API's serving certificate;
	// empty: a self-signed one is made at each start. ClientCAFile is the
	// CA of the client certificates the API server presents; empty: the
	// CA in the kubeconfig.
	TLSCertFile, TLSKeyFile, ClientCAFile string
	// PodCIDR is the node's range of pod addresses; Bridge the host's
	// bridge of the pod network. Two nodes on one machine need their own.
	PodCIDR string
	Bridge  string
	// CNIPluginDirs hold the CNI plugins (bridge, host-local, loopback).
	CNIPluginDirs []string
	// StateDir holds what the agent keeps on disk (pods' volumes, the pod
	// network's address leases); RunDir what must not outlive the boot,
	// the pods' sandboxes (their namespaces, held by mounts): it should
	// be on a tmpfs.
	StateDir, RunDir string
	// MaxPods is the node's pod capacity, at most the pod addresses
	// PodCIDR has.
	MaxPods int
	// Taints are KEY[=VALUE]:EFFECT, put on the node at registration.
	Taints []string
	// Backoff and MaxBackoff bound the delay before a container that
	// exited is restarted.
	Backoff, MaxBackoff time.Duration
	// Workers is how many pods virtual-kubelet hands to the provider at
	// once (each is then started by its own worker).
	Workers int
	Logger  *slog.Logger
}

// Defaults are the options' default values.
func Defaults() Options {
	host, _ := os.Hostname()
	return Options{
		NodeName:      strings.ToLower(host),
		Troupe:        "unix:///run/troupe/troupe.sock",
		NodeIP:        "127.0.0.1",
		Port:          10250,
		PodCIDR:       "10.88.0.0/21",
		Bridge:        "troupe0",
		CNIPluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"},
		StateDir:      "/var/lib/troupe-kubelet",
		RunDir:        "/run/troupe-kubelet",
		MaxPods:       1100,
		Backoff:       10 * time.Second,
		MaxBackoff:    5 * time.Minute,
		Workers:       16,
	}
}

// Version is the kubelet version the node reports: the Kubernetes release
// whose API the agent speaks.
const Version = "v1.37.2"

// Run runs the agent until ctx ends. The pods' containers run on after it
// stops; the next agent on the same node adopts them.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger
	// virtual-kubelet logs through the context's logger.
	ctx = vklog.WithLogger(ctx, vkslog.FromSlog(log))
	kcfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig, Precedence: filepath.SplitList(os.Getenv("KUBECONFIG"))},
		&clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// A node reports the status of each of its pods: client-go's default
	// of 5 requests a second would have 1000 pods wait minutes.
	kcfg.QPS, kcfg.Burst = 100, 200
	// Protobuf, as the kubelet and the control plane's own components
	// speak: the API server encodes each pod's watch events and status
	// updates for the agent at less CPU than in JSON.
	kcfg.ContentType = runtime.ContentTypeProtobuf
	kcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	kube, err := kubernetes.NewForConfig(kcfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	var copts []client.Option
	if o.TroupeTokenFile != "" {
		tok, err := os.ReadFile(o.TroupeTokenFile)
		if err != nil {
			return fmt.Errorf("troupe token: %w", err)
		}
		copts = append(copts, client.WithToken(strings.TrimSpace(string(tok))))
	}
	troupe, err := client.New(o.Troupe, copts...)
	if err != nil {
		return fmt.Errorf("troupe client: %w", err)
	}
	defer troupe.Close()
	if err := waitTroupe(ctx, troupe, log); err != nil {
		return err
	}

	for _, d := range []string{o.StateDir, o.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	var taints []corev1.Taint
	for _, s := range o.Taints {
		t, err := provider.ParseTaint(s)
		if err != nil {
			return err
		}
		taints = append(taints, t)
	}
	cidr, err := netip.ParsePrefix(o.PodCIDR)
	if err != nil {
		return fmt.Errorf("pod CIDR %q: %w", o.PodCIDR, err)
	}
	// A pod the scheduler sends beyond the addresses would wait for one
	// forever: the node takes no more pods than it has addresses for.
	maxPods := o.MaxPods
	if n := podnet.Addresses(cidr); n < maxPods {
		log.Warn("fewer pod addresses than pods: the node's pod capacity is their number", "podCIDR", o.PodCIDR, "addresses", n, "maxPods", o.MaxPods)
		maxPods = n
	}
	spec, err := provider.NodeSpec(ctx, troupe, provider.NodeOptions{
		Name: o.NodeName, IP: o.NodeIP, Port: int32(o.Port), MaxPods: maxPods,
		PodCIDR: o.PodCIDR, Taints: taints, KubeletVersion: Version,
	})
	if err != nil {
		return err
	}
	parts, err := newParts(ctx, o, log, kube, troupe)
	if err != nil {
		return err
	}
	defer func() {
		if err := parts.sandboxes.Close(); err != nil {
			log.Warn("close the sandboxes", "err", err)
		}
	}()

	serve, err := parts.serve(net.JoinHostPort(o.NodeIP, strconv.Itoa(o.Port)), kcfg)
	if err != nil {
		return err
	}
	var prov *provider.Provider
	events, stopEvents := podEvents(kube, o.NodeName)
	defer stopEvents()
	opts := append([]nodeutil.NodeOpt{
		nodeutil.WithClient(kube),
		func(c *nodeutil.NodeConfig) error {
			c.NodeSpec = *spec
			c.NumWorkers = o.Workers
			c.EventRecorder = events
			return nil
		},
		nodeutil.WithPodControllerConfigOverrides(onlyBackoff),
	}, serve...)
	vk, err := nodeutil.NewNode(o.NodeName, func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		prov, err = provider.New(parts.providerConfig(pc))
		return prov, provider.NodeProvider{Troupe: troupe}, err
	}, opts...)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	provDone := make(chan error, 1)
	go func() { provDone <- prov.Run(ctx) }()
	go func() {
		select {
		case <-vk.Ready():
			prov.CollectGarbage(ctx)
		case <-ctx.Done():
		}
	}()
	log.Info("troupe-kubelet starting", "node", o.NodeName, "troupe", o.Troupe, "api", net.JoinHostPort(o.NodeIP, strconv.Itoa(o.Port)))
	err = vk.Run(ctx)
	cancel()
	<-provDone
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// onlyBackoff leaves virtual-kubelet's pod queues only their backoff per
// pod after a failure. Their default, client-go's controller rate limiter,
// also spaces all pods together 100 ms apart beyond a burst of 100: the
// 1000th new pod of a burst reached CreatePod 90 s after its binding, and
// its status went out as late again. The API calls the queues make are
// bounded by the client's QPS already.
func onlyBackoff(c *node.PodControllerConfig) error {
	backoff := func() workqueue.TypedRateLimiter[any] {
		// client-go's per-item part of the default: 5 ms doubling to 1000 s.
		return workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 1000*time.Second)
	}
	c.SyncPodsFromKubernetesRateLimiter = backoff()
	c.DeletePodsFromKubernetesRateLimiter = backoff()
	c.SyncPodStatusFromProviderRateLimiter = backoff()
	return nil
}

// waitTroupe waits for the troupe daemon to answer: the agent may start
// before it.
func waitTroupe(ctx context.Context, troupe *client.Client, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := troupe.Health(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the troupe daemon does not answer: %w", err)
		}
		log.Info("waiting for the troupe daemon", "err", err)
		time.Sleep(time.Second)
	}
}
