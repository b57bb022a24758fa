package provider

import (
	"context"
	"errors"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/troupe-run/troupe/kubelet/internal/kubeletapi"
)

// errNotServed answers what the kubelet API of a troupe node does not
// serve.
var errNotServed = errors.New("not served by the troupe node")

func (p *Provider) streams() *kubeletapi.Streams { return &kubeletapi.Streams{Client: p.cfg.Troupe} }

// GetContainerLogs returns the log of a pod's container (kubectl logs).
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	id, err := p.ContainerID(namespace, podName, containerName)
	if err != nil {
		return nil, err
	}
	return p.streams().Logs(ctx, id, opts)
}

// RunInContainer runs cmd in a pod's container, its stdio attached
// (kubectl exec).
func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	id, err := p.ContainerID(namespace, podName, containerName)
	if err != nil {
		return err
	}
	return p.streams().Exec(ctx, id, cmd, attach)
}

// AttachToContainer attaches to a pod's container's main process (kubectl
// attach).
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	id, err := p.ContainerID(namespace, podName, containerName)
	if err != nil {
		return err
	}
	return p.streams().Attach(ctx, id, attach)
}

// GetStatsSummary is not served.
func (p *Provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return nil, errNotServed
}

// GetMetricsResource is not served.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, errNotServed
}

// PortForward is not served.
func (p *Provider) PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error {
	return errNotServed
}
