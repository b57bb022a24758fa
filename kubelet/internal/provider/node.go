package provider

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/troupe-run/troupe/http/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeOptions describe the Node the agent registers.
type NodeOptions struct {
	Name string
	// IP is the node's InternalIP: where the API server reaches the
	// kubelet API, on Port.
	IP   string
	Port int32
	// MaxPods is the node's pod capacity.
	MaxPods int
	// PodCIDR is the node's range of pod addresses, if it has one.
	PodCIDR string
	// Taints are put on the node at its registration.
	Taints []corev1.Taint
	// KubeletVersion is what the node reports as its kubelet's version.
	KubeletVersion string
}

// NodeSpec returns the Node to register: its capacity is the troupe
// daemon's machine (its CPUs, its memory) and MaxPods.
func NodeSpec(ctx context.Context, troupe *client.Client, o NodeOptions) (*corev1.Node, error) {
	st, err := troupe.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the troupe daemon's machine: %w", err)
	}
	v, err := troupe.Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the troupe daemon's version: %w", err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(st.Machine.CPUs), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(st.Machine.Memory), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(o.MaxPods), resource.DecimalSI),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: o.Name,
			Labels: map[string]string{
				"kubernetes.io/hostname":           o.Name,
				"kubernetes.io/os":                 "linux",
				"kubernetes.io/arch":               runtime.GOARCH,
				"node.kubernetes.io/instance-type": "troupe",
				"type":                             "troupe",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: o.PodCIDR, Taints: o.Taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Phase:       corev1.NodeRunning,
			// No Hostname address: the node's name need not resolve, and
			// the API server tries a Hostname first to reach the kubelet
			// API.
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: o.IP}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: o.Port}},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				KubeletVersion:          o.KubeletVersion,
				ContainerRuntimeVersion: "troupe://" + v.Version,
			},
			Conditions: nodeConditions(true, ""),
		},
	}
	if o.PodCIDR != "" {
		node.Spec.PodCIDRs = []string{o.PodCIDR}
	}
	return node, nil
}

// nodeConditions are the node's conditions: Ready says whether the troupe
// daemon answers; the pressures are not measured and stay False.
func nodeConditions(ready bool, msg string) []corev1.NodeCondition {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, ok bool, reason, msg string) corev1.NodeCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: now}
	}
	readyReason := "KubeletReady"
	if !ready {
		readyReason = "TroupeUnreachable"
	}
	if msg == "" {
		msg = "the troupe daemon answers"
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeReady, ready, readyReason, msg),
		cond(corev1.NodeMemoryPressure, false, "KubeletHasSufficientMemory", "not measured"),
		cond(corev1.NodeDiskPressure, false, "KubeletHasNoDiskPressure", "not measured"),
		cond(corev1.NodePIDPressure, false, "KubeletHasSufficientPID", "not measured"),
		cond(corev1.NodeNetworkUnavailable, false, "RouteCreated", "pods on this node reach each other"),
	}
}

// NodeProvider is virtual-kubelet's NodeProvider for the node: its ping is
// the troupe daemon's health, so a node whose daemon does not answer stops
// renewing its lease and Kubernetes marks it unreachable.
type NodeProvider struct {
	Troupe *client.Client
}

// Ping asks the troupe daemon whether it is healthy.
func (n NodeProvider) Ping(ctx context.Context) error { return n.Troupe.Health(ctx) }

// NotifyNodeStatus has nothing to tell asynchronously: the status is
// renewed with each ping.
func (n NodeProvider) NotifyNodeStatus(ctx context.Context, cb func(*corev1.Node)) {}

// ParseTaint parses KEY[=VALUE]:EFFECT, as kubelet's --register-with-taints.
func ParseTaint(s string) (corev1.Taint, error) {
	var t corev1.Taint
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return t, fmt.Errorf("taint %q: want KEY[=VALUE]:EFFECT", s)
	}
	switch e := corev1.TaintEffect(s[i+1:]); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		t.Effect = e
	default:
		return t, fmt.Errorf("taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, e)
	}
	t.Key, t.Value, _ = strings.Cut(s[:i], "=")
	if t.Key == "" {
		return t, fmt.Errorf("taint %q: no key", s)
	}
	return t, nil
}
