package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/http/client"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/troupe-run/troupe/kubelet/internal/podnet"
	"github.com/troupe-run/troupe/kubelet/internal/provider"
)

// parts are the pieces of the node the provider is given: the pod
// network, the pods' specs and volumes, and the kubelet API.
type parts struct {
	o        Options
	troupe   *client.Client
	network  *podnet.Network
	pause    string
	provider *provider.Provider
}

func newParts(ctx context.Context, o Options, kube kubernetes.Interface, kcfg *rest.Config, troupe *client.Client) (*parts, error) {
	subnet, err := netip.ParsePrefix(o.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR: %w", err)
	}
	network, err := podnet.New(podnet.Config{
		Name: "troupe-" + o.NodeName, Bridge: o.Bridge, Subnet: subnet,
		PluginDirs: o.CNIPluginDirs, StateDir: filepath.Join(o.StateDir, "network"),
	})
	if err != nil {
		return nil, err
	}
	if o.PauseImage == "" {
		return nil, fmt.Errorf("--pause-image is required")
	}
	return &parts{o: o, troupe: troupe, network: network, pause: o.PauseImage}, nil
}

func (p *parts) close() {}

func (p *parts) sandbox(pod *corev1.Pod) (api.StartRequest, error) {
	return api.StartRequest{ImageStart: api.ImageStart{Image: p.pause, Pull: api.PullMissing,
		Entrypoint: &[]string{"sleep", "2147483647"}, Hostname: pod.Name}}, nil
}

func (p *parts) prepare(ctx context.Context, pod *corev1.Pod, pc nodeutil.ProviderConfig) (provider.Starter, error) {
	return func(c *corev1.Container, sandbox string) (api.StartRequest, error) {
		req := api.StartRequest{Join: &api.Join{Network: sandbox, IPC: sandbox, UTS: sandbox},
			ImageStart: api.ImageStart{Image: c.Image, Pull: api.PullMissing, Args: c.Args}}
		if c.Command != nil {
			req.Entrypoint = &c.Command
		}
		return req, nil
	}, nil
}

func (p *parts) cleanup(uid types.UID) error { return nil }

// serve has the node serve the kubelet API on addr.
func (p *parts) serve(addr string) nodeutil.NodeOpt {
	return func(c *nodeutil.NodeConfig) error {
		c.HTTPListenAddr = addr
		return nil
	}
}
