package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/troupe-run/troupe/kubelet/internal/kubeletapi"
	"github.com/troupe-run/troupe/kubelet/internal/podnet"
	"github.com/troupe-run/troupe/kubelet/internal/podspec"
	"github.com/troupe-run/troupe/kubelet/internal/podvolumes"
	"github.com/troupe-run/troupe/kubelet/internal/provider"
	"github.com/troupe-run/troupe/runtime/podns"
)

// parts are the pieces of the node the provider is given: the pod
// network, the pods' sandboxes, volumes and specs.
type parts struct {
	o       Options
	log     *slog.Logger
	troupe  *client.Client
	kube    kubernetes.Interface
	network *podnet.Network
	// sandboxes are the pods' sandboxes: their mounts apart from the
	// host's, which each container start copies; on an IPv4 pod network
	// their interfaces get no IPv6.
	sandboxes *podns.Manager
}

func newParts(ctx context.Context, o Options, log *slog.Logger, kube kubernetes.Interface, troupe *client.Client) (*parts, error) {
	subnet, err := netip.ParsePrefix(o.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR: %w", err)
	}
	network, err := podnet.New(podnet.Config{
		Name: "troupe-" + o.NodeName, Bridge: o.Bridge, Subnet: subnet,
		PluginDirs: o.CNIPluginDirs, StateDir: filepath.Join(o.StateDir, "network"),
		// libcontainer brings lo up in each network namespace it makes.
		LoopbackUp: true,
	})
	if err != nil {
		return nil, err
	}
	run, err := filepath.Abs(o.RunDir)
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	sandboxes := &podns.Manager{Dir: filepath.Join(run, "sandboxes"), NoIPv6: subnet.Addr().Is4(), Apart: true}
	return &parts{o: o, log: log, troupe: troupe, kube: kube, network: network, sandboxes: sandboxes}, nil
}

// providerConfig is the provider's configuration, with the listers
// virtual-kubelet made.
func (p *parts) providerConfig(pc nodeutil.ProviderConfig) provider.Config {
	volumes := &podvolumes.Manager{
		Dir:        filepath.Join(p.o.StateDir, "pods"),
		ConfigMaps: pc.ConfigMaps, Secrets: pc.Secrets, Client: p.kube,
	}
	return provider.Config{
		Troupe: p.troupe, NodeIP: p.o.NodeIP, Pods: pc.Pods,
		Network:   p.network,
		Sandboxes: p.sandboxes,
		Hostname:  podspec.SandboxHostname,
		Prepare: func(ctx context.Context, pod *corev1.Pod) (provider.Starter, error) {
			vols, err := volumes.Prepare(ctx, pod)
			if err != nil {
				return nil, err
			}
			// As the kubelet, a pull secret that is missing is passed
			// over: the pull may not need it.
			var secrets []*corev1.Secret
			for _, ref := range pod.Spec.ImagePullSecrets {
				s, err := pc.Secrets.Secrets(pod.Namespace).Get(ref.Name)
				if err != nil {
					p.log.Warn("image pull secret", "pod", pod.Namespace+"/"+pod.Name, "secret", ref.Name, "err", err)
					continue
				}
				secrets = append(secrets, s)
			}
			return func(c *corev1.Container, sandbox podns.Sandbox, ip netip.Addr) (api.StartRequest, error) {
				var ips []string
				if ip.IsValid() {
					ips = []string{ip.String()}
				}
				hosts, err := volumes.WriteEtcHosts(pod.UID, podspec.EtcHosts(pod, ips))
				if err != nil {
					return api.StartRequest{}, err
				}
				auth, err := podspec.PullAuth(c.Image, secrets)
				if err != nil {
					return api.StartRequest{}, err
				}
				return podspec.Container(pod, c, podspec.Options{Sandbox: sandbox, Volumes: vols, EtcHosts: hosts, Auth: auth})
			}, nil
		},
		Check: func(pod *corev1.Pod, c *corev1.Container, started api.Container) error {
			return podspec.CheckNonRoot(pod, c, started.Processes[0].User.UID)
		},
		Cleanup:  volumes.Remove,
		Prepared: volumes.Prepared,
		Backoff:  p.o.Backoff, MaxBackoff: p.o.MaxBackoff, Logger: p.log,
	}
}

// serve has the node serve the kubelet API on addr, over TLS, to the
// callers Kubernetes authorizes on the node (package kubeletapi).
func (p *parts) serve(addr string, kcfg *rest.Config) ([]nodeutil.NodeOpt, error) {
	clientCA, err := p.clientCA(kcfg)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := kubeletapi.TLSConfig(p.o.TLSCertFile, p.o.TLSKeyFile, clientCA, p.o.NodeIP, p.o.NodeName)
	if err != nil {
		return nil, err
	}
	auth, err := kubeletapi.Auth(p.kube, p.o.NodeName, clientCA)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	return []nodeutil.NodeOpt{
		nodeutil.AttachProviderRoutes(mux),
		func(c *nodeutil.NodeConfig) error {
			c.HTTPListenAddr = addr
			c.TLSConfig = tlsCfg
			c.Handler = kubeletapi.Handler(auth, mux)
			return nil
		},
	}, nil
}

// clientCA is the CA of the client certificates the kubelet API accepts:
// --client-ca-file, else the CA the agent trusts the API server by.
func (p *parts) clientCA(kcfg *rest.Config) ([]byte, error) {
	file := p.o.ClientCAFile
	if file == "" && len(kcfg.TLSClientConfig.CAData) > 0 {
		return kcfg.TLSClientConfig.CAData, nil
	}
	if file == "" {
		file = kcfg.TLSClientConfig.CAFile
	}
	if file == "" {
		return nil, errors.New("kubelet API: no client CA (--client-ca-file, or a kubeconfig with the cluster's CA)")
	}
	ca, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("kubelet API client CA: %w", err)
	}
	return ca, nil
}
