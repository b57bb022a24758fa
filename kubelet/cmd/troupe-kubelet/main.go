// Command troupe-kubelet makes a troupe daemon a Kubernetes node: see
// package agent, and the README's "Running under Kubernetes".
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/troupe-run/troupe/kubelet/internal/agent"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "troupe-kubelet:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := agent.Defaults()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "troupe-kubelet",
		Short: "run a troupe daemon as a Kubernetes node",
		Long: `troupe-kubelet registers a Node with the Kubernetes API server and runs the
pods bound to it as containers of one troupe daemon: a pod is a sandbox, its
network, IPC and UTS namespaces held by bind mounts under --run-dir (no
process holds them; the mounts are in a mount namespace of their own), and a
container per pod container joining them. It serves the kubelet API (logs,
exec, attach) over TLS for the API server. On SIGTERM or SIGINT it stops; the
pods run on, and the next troupe-kubelet for the node adopts them.

The troupe daemon must allow bind mounts (troupe daemon --allow-binds): the
pods' volumes are bind mounts of directories the agent fills.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			// client-go logs through klog, which writes to stderr in its
			// own format unless told otherwise.
			klog.SetSlogLogger(o.Logger)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return agent.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeName, "node-name", o.NodeName, "the Node's name")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "the agent's kubeconfig (default $KUBECONFIG)")
	f.StringVar(&o.Troupe, "troupe", o.Troupe, "the troupe daemon's address: unix:///path or tcp://127.0.0.1:PORT")
	f.StringVar(&o.TroupeTokenFile, "troupe-token-file", "", "file holding the troupe daemon's bearer token, if it wants one")
	f.StringVar(&o.NodeIP, "node-ip", o.NodeIP, "the node's InternalIP, where the kubelet API listens and the pods' hostIP")
	f.IntVar(&o.Port, "port", o.Port, "the kubelet API's port")
	f.StringVar(&o.TLSCertFile, "tls-cert-file", "", "the kubelet API's serving certificate (default: self-signed at each start)")
	f.StringVar(&o.TLSKeyFile, "tls-private-key-file", "", "its key")
	f.StringVar(&o.ClientCAFile, "client-ca-file", "", "CA of the client certificates the kubelet API accepts (default: the kubeconfig's CA)")
	f.StringVar(&o.PodCIDR, "pod-cidr", o.PodCIDR, "the node's range of pod addresses")
	f.StringVar(&o.Bridge, "bridge", o.Bridge, "the host bridge of the pod network (at most 15 characters)")
	f.StringSliceVar(&o.CNIPluginDirs, "cni-bin-dir", o.CNIPluginDirs, "directories holding the CNI plugins bridge, host-local and loopback")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "directory for the pods' volumes and the pod network's leases")
	f.StringVar(&o.RunDir, "run-dir", o.RunDir, "directory of the pods' sandboxes, their namespaces held by mounts (should be on a tmpfs)")
	f.IntVar(&o.MaxPods, "max-pods", o.MaxPods, "the node's pod capacity")
	f.StringArrayVar(&o.Taints, "register-with-taints", nil, "a taint KEY[=VALUE]:EFFECT put on the node at registration (repeatable)")
	f.DurationVar(&o.Backoff, "restart-backoff", o.Backoff, "delay before the second restart of a container that exited; it doubles with each further one")
	f.DurationVar(&o.MaxBackoff, "max-restart-backoff", o.MaxBackoff, "the longest such delay")
	f.IntVar(&o.Workers, "workers", o.Workers, "pods handed to troupe at once")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
