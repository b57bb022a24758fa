// Package podnet attaches pods' network namespaces to a node-local bridge
// through CNI, running the reference plugins (Debian's
// containernetworking-plugins: bridge, host-local, loopback) with libcni.
//
// The network is built in memory rather than read from /etc/cni/net.d: the
// agent owns it, and two agents on one machine (two nodes in a test) must
// each have their own, differing only in Config. Choices, and why:
//
//   - bridge with isGateway: the bridge holds the subnet's first address,
//     so pods reach the node (and its kubelet API, probes) on it. The
//     bridge plugin turns on the host's net.ipv4.ip_forward for that.
//   - no default route and ipMasq off: a pod's only route is its subnet's
//     connected one, so it reaches the other pods on this node and the
//     node's bridge address, and nothing else; there is no NAT to the
//     outside world to leak through. Another Network's pods are outside
//     the subnet, so two agents' pods cannot reach each other either.
//   - hairpinMode: a pod may reach itself through an address that the
//     bridge sends back to it.
//   - host-local IPAM on Subnet, with its dataDirs under StateDir: the
//     addresses handed out survive an agent restart, and are per Network.
//     The subnet is split into ranges of a dataDir each (leases.go says
//     why).
//   - loopback: a pod's "lo" comes up, as Kubernetes requires.
//   - libcni's result cache under StateDir: after a restart the agent finds
//     each pod's address (Addr) and which pods are attached (Attached)
//     without asking the plugins, and Add of an attached pod returns its
//     address rather than taking a second one.
//
// Every plugin runs under the caller's context: a plugin that hangs is
// killed at its deadline and the error names it.
package podnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// IfName is the pod's interface on the network.
const IfName = "eth0"

// cniVersion is the newest spec version that Debian's plugins (1.1) speak.
const cniVersion = "1.0.0"

// cleanupTimeout bounds the DEL that undoes a failed ADD, which must run
// even when the ADD failed because its context ended.
const cleanupTimeout = 10 * time.Second

// DefaultPluginDirs are where Debian (and most distributions) and the
// upstream release put the CNI plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// plugins are the plugins the network runs.
func (cfg Config) plugins() []string {
	if cfg.LoopbackUp {
		return []string{"bridge", "host-local"}
	}
	return []string{"bridge", "host-local", "loopback"}
}

// Config describes one agent's pod network.
type Config struct {
	// Name is the CNI network's name, unique per agent on a machine.
	Name string
	// Bridge is the Linux bridge the plugin creates (at most 15 bytes).
	Bridge string
	// Subnet is the node's pod CIDR, e.g. 10.88.0.0/24; its first address
	// goes to the bridge.
	Subnet netip.Prefix
	// PluginDirs are searched for the plugins; empty means DefaultPluginDirs.
	PluginDirs []string
	// StateDir holds host-local's leases (leases/) and libcni's cache
	// (cache/); it must survive agent restarts and be the agent's own.
	StateDir string
	// LoopbackUp says the namespaces come with "lo" up, as troupe's
	// runtime (libcontainer) brings it up in every network namespace it
	// makes: the loopback plugin, a third of the network's cost per pod,
	// is then not run.
	LoopbackUp bool
	// Parallel bounds the pods whose plugins run at once; 0 means four
	// times the CPUs. Each ADD or DEL execs Go programs that hold a lock
	// (the address leases) and contend for the CPUs: a thousand at once
	// only slow each other down (500 ADDs at once: 6.9 s unbounded, 6.3 s
	// four at a time), while too few leave the CPUs idle when the plugins
	// wait on the kernel.
	Parallel int
}

// Network is a pod network. Its methods may be called concurrently for
// different pods, not for one pod.
type Network struct {
	cfg Config
	cni *libcni.CNIConfig
	// shards split the addresses (leases.go); list is the first one's
	// configuration, for reading libcni's cache, which is the same for all.
	shards []shard
	list   *libcni.NetworkConfigList
	// slots holds a token per plugin run in progress (Config.Parallel).
	slots chan struct{}
}

// New checks cfg and the plugins, and returns the network. It creates
// nothing on the host: the bridge appears with the first pod.
func New(cfg Config) (*Network, error) {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("podnet: %w", err)
	}
	var missing []string
	for _, p := range cfg.plugins() {
		if _, err := invoke.FindInPath(p, cfg.PluginDirs); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("podnet: CNI plugins %s not found in %s: install them (Debian: apt-get install containernetworking-plugins; make kube-deps does) or name their directory",
			strings.Join(missing, ", "), strings.Join(cfg.PluginDirs, ":"))
	}
	shards, err := cfg.shards()
	if err != nil {
		return nil, fmt.Errorf("podnet: network %s: %w", cfg.Name, err)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4 * runtime.NumCPU()
	}
	n := &Network{
		slots: make(chan struct{}, cfg.Parallel),
		cfg:   cfg,
		// An exec of our own: given none, libcni makes one at first use,
		// a data race between the first pods attached at once.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.StateDir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		shards: shards,
		list:   shards[0].list,
	}
	if err := n.migrateLeases(); err != nil {
		return nil, fmt.Errorf("podnet: network %s: %w", cfg.Name, err)
	}
	return n, nil
}

func (cfg Config) check() error {
	if e := utils.ValidateNetworkName(cfg.Name); e != nil {
		return fmt.Errorf("network name %q: %w", cfg.Name, e)
	}
	if e := utils.ValidateInterfaceName(cfg.Bridge); e != nil {
		return fmt.Errorf("bridge name %q: %w", cfg.Bridge, e)
	}
	s := cfg.Subnet
	switch {
	case !s.IsValid():
		return errors.New("no subnet")
	case s != s.Masked():
		return fmt.Errorf("subnet %s has host bits set (want %s)", s, s.Masked())
	case s.Addr().Is4() && s.Bits() > 30, s.Addr().Is6() && s.Bits() > 126:
		// Room for the network address, the bridge and at least one pod.
		return fmt.Errorf("subnet %s has no room for a pod", s)
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return fmt.Errorf("state directory %q is not an absolute path", cfg.StateDir)
	}
	return nil
}

// conflist is the network's CNI configuration list for the addresses of
// shard s.
func conflist(cfg Config, s shard) map[string]any {
	rng := map[string]string{"subnet": cfg.Subnet.String()}
	if s.first.IsValid() {
		rng["rangeStart"], rng["rangeEnd"] = s.first.String(), s.last.String()
	}
	list := map[string]any{
		"cniVersion": cniVersion,
		"name":       cfg.Name,
		"plugins": []map[string]any{
			{
				"type":             "bridge",
				"bridge":           cfg.Bridge,
				"isGateway":        true,
				"isDefaultGateway": false,
				"ipMasq":           false,
				"hairpinMode":      true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": s.dataDir,
					"ranges":  [][]map[string]string{{rng}},
					// No routes: the address's connected route to
					// the subnet is all a pod gets.
				},
			},
		},
	}
	if !cfg.LoopbackUp {
		list["plugins"] = append(list["plugins"].([]map[string]any), map[string]any{"type": "loopback"})
	}
	return list
}

// Add attaches the network namespace at netnsPath (such as
// /proc/PID/ns/net of the pod's sandbox) to the network as IfName, and
// returns the pod's address. A pod already attached through the same
// path keeps its address, unchecked: the path must still name the
// namespace it named then (a /proc/PID path whose process is gone may name
// another's). One cached with another path (its sandbox was made anew) is
// detached from that one first.
func (n *Network) Add(ctx context.Context, podID, netnsPath string) (netip.Addr, error) {
	if netnsPath == "" {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: no network namespace", podID, n.cfg.Name)
	}
	if own, err := ownNetns(netnsPath); err != nil {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %w", podID, n.cfg.Name, err)
	} else if own {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %s is the agent's own network namespace", podID, n.cfg.Name, netnsPath)
	}
	if old, ok, err := n.attachment(podID); err != nil {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %w", podID, n.cfg.Name, err)
	} else if ok && old == netnsPath {
		if addr, ok := n.Addr(podID); ok {
			return addr, nil
		}
	} else if ok {
		if err := n.Del(ctx, podID, old); err != nil {
			return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: detach from its former namespace: %w", podID, n.cfg.Name, err)
		}
	}
	rt := n.runtime(podID, netnsPath)
	first := n.shardOf(podID)
	var err error
	for i := range n.shards {
		var addr netip.Addr
		addr, err = n.addOn(ctx, &n.shards[(first+i)%len(n.shards)], podID, rt)
		if !full(err) {
			return addr, err
		}
	}
	return netip.Addr{}, err
}

// addOn attaches the pod with an address of shard s.
func (n *Network) addOn(ctx context.Context, s *shard, podID string, rt *libcni.RuntimeConf) (netip.Addr, error) {
	if err := n.bridgeReady(); err != nil {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %w", podID, n.cfg.Name, err)
	}
	release, err := n.slot(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %w", podID, n.cfg.Name, err)
	}
	res, err := n.cni.AddNetworkList(ctx, s.list, rt)
	release()
	if err != nil {
		err = n.failed(ctx, "add pod", podID, err)
		// Release what the plugins that ran took (the address, the
		// veth), even when ctx has ended.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := n.cni.DelNetworkList(cctx, s.list, rt); derr != nil {
			err = fmt.Errorf("%w (and undoing it: %w)", err, derr)
		}
		return netip.Addr{}, err
	}
	addr, err := n.addrOf(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("podnet: add pod %s to %s: %w", podID, n.cfg.Name, err)
	}
	return addr, nil
}

// Del detaches the pod and releases its address. netnsPath may be empty,
// or name a namespace that is gone, when the pod's processes are: the
// address is released anyway (the kernel removed the veth with the
// namespace). Del of a pod not attached does nothing.
func (n *Network) Del(ctx context.Context, podID, netnsPath string) error {
	if e := utils.ValidateContainerID(podID); e != nil {
		return fmt.Errorf("podnet: delete pod %q from %s: %w", podID, n.cfg.Name, e)
	}
	if netnsPath != "" {
		// A /proc/PID path outlives its process: PID may be another
		// process's now. Never let the plugins remove eth0 from the
		// agent's own namespace; a namespace that is gone is left out.
		own, err := ownNetns(netnsPath)
		if own || errors.Is(err, os.ErrNotExist) {
			netnsPath = ""
		} else if err != nil {
			return fmt.Errorf("podnet: delete pod %s from %s: %w", podID, n.cfg.Name, err)
		}
	}
	s := n.shardHolding(podID)
	release, err := n.slot(ctx)
	if err != nil {
		return fmt.Errorf("podnet: delete pod %s from %s: %w", podID, n.cfg.Name, err)
	}
	defer release()
	if err := n.cni.DelNetworkList(ctx, s.list, n.runtime(podID, netnsPath)); err != nil {
		return n.failed(ctx, "delete pod", podID, err)
	}
	return nil
}

// slot waits for a free plugin run (Config.Parallel) and returns its
// release.
func (n *Network) slot(ctx context.Context) (release func(), err error) {
	select {
	case n.slots <- struct{}{}:
		return func() { <-n.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a turn to run the CNI plugins: %w", ctx.Err())
	}
}

// Addr is the address of an attached pod, from the cache.
func (n *Network) Addr(podID string) (netip.Addr, bool) {
	if e := utils.ValidateContainerID(podID); e != nil {
		return netip.Addr{}, false
	}
	res, err := n.cni.GetNetworkListCachedResult(n.list, n.runtime(podID, ""))
	if err != nil || res == nil {
		return netip.Addr{}, false
	}
	addr, err := n.addrOf(res)
	return addr, err == nil
}

// Attached lists the pods with a cached attachment, those Add attached
// and Del has not detached yet, in no particular order.
func (n *Network) Attached() ([]string, error) {
	atts, err := n.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("podnet: attachments of %s: %w", n.cfg.Name, err)
	}
	var ids []string
	for _, a := range atts {
		if a.Network == n.cfg.Name && a.IfName == IfName {
			ids = append(ids, a.ContainerID)
		}
	}
	return ids, nil
}

// attachment is the namespace path a pod's cached attachment was made with.
func (n *Network) attachment(podID string) (netns string, ok bool, err error) {
	if e := utils.ValidateContainerID(podID); e != nil {
		return "", false, e
	}
	atts, err := n.cni.GetCachedAttachments(podID)
	if err != nil {
		return "", false, fmt.Errorf("cached attachments: %w", err)
	}
	for _, a := range atts {
		if a.Network == n.cfg.Name && a.IfName == IfName && a.ContainerID == podID {
			return a.NetNS, true, nil
		}
	}
	return "", false, nil
}

func (n *Network) runtime(podID, netnsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: IfName}
}

// addrOf is the pod's address in a plugins' result.
func (n *Network) addrOf(res types.Result) (netip.Addr, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok && n.cfg.Subnet.Contains(a.Unmap()) {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("CNI result has no address in %s", n.cfg.Subnet)
}

// failed wraps a plugin's error (libcni's names the plugin), adding the
// context's when it ended the plugin.
func (n *Network) failed(ctx context.Context, op, podID string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("podnet: %s %s on %s: %w (%w)", op, podID, n.cfg.Name, err, context.Cause(ctx))
	}
	return fmt.Errorf("podnet: %s %s on %s: %w", op, podID, n.cfg.Name, err)
}

// ownNetns tells whether path is the network namespace this process is in.
func ownNetns(path string) (bool, error) {
	var self, ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return false, fmt.Errorf("own network namespace: %w", &os.PathError{Op: "stat", Path: "/proc/self/ns/net", Err: err})
	}
	if err := unix.Stat(path, &ns); err != nil {
		return false, fmt.Errorf("network namespace: %w", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	return self.Dev == ns.Dev && self.Ino == ns.Ino, nil
}
