package podnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestMain puts back the host's IPv4 forwarding, which the bridge plugin
// turns on for a gateway bridge.
func TestMain(m *testing.M) {
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	before, err := os.ReadFile(fwd)
	code := m.Run()
	if err == nil {
		_ = os.WriteFile(fwd, before, 0o644)
	}
	os.Exit(code)
}

// requireNet skips unless root, then really makes a bridge and a veth pair
// (what the bridge plugin will make), failing when the kernel can't.
func requireNet(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("podnet: needs root (bridges, veths, network namespaces)")
	}
	if _, err := New(Config{Name: "probe", Bridge: "probe0", Subnet: netip.MustParsePrefix("10.0.0.0/24"), StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	suffix := randHex(t, 3)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "tpk" + suffix}}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tpv" + suffix}, PeerName: "tpp" + suffix}
	for _, l := range []netlink.Link{br, veth} {
		if err := netlink.LinkAdd(l); err != nil {
			t.Fatalf("kernel: add %s %s: %v", l.Type(), l.Attrs().Name, err)
		}
		if err := netlink.LinkDel(l); err != nil {
			t.Fatalf("kernel: delete %s %s: %v", l.Type(), l.Attrs().Name, err)
		}
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNetwork makes a Network of its own name, bridge and state on subnet
// (a random 10.234.x.0/24 when invalid), and removes its bridge after.
func newNetwork(t *testing.T, subnet netip.Prefix) *Network {
	t.Helper()
	suffix := randHex(t, 4)
	if !subnet.IsValid() {
		var b [1]byte
		_, _ = rand.Read(b[:])
		subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 234, b[0], 0}), 24)
	}
	n, err := New(Config{Name: "podnet-test-" + suffix, Bridge: "tpn" + suffix, Subnet: subnet, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(n.cfg.Bridge); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("delete bridge %s: %v", n.cfg.Bridge, err)
			}
		}
	})
	return n
}

// netnsProc is a process in a network namespace of its own.
type netnsProc struct {
	cmd  *exec.Cmd
	path string
}

// newNetns starts a process in a new network namespace; the namespace
// lives as long as it does.
func newNetns(t *testing.T) *netnsProc {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	p := &netnsProc{cmd: cmd, path: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)}
	t.Cleanup(p.kill)
	// unshare enters the namespace before it runs sleep.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if own, err := ownNetns(p.path); err == nil && !own {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not enter a network namespace of its own", cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *netnsProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// inNetns runs f on a thread in the network namespace at path; the thread
// is thrown away after. Never the main thread: Go can't end that one, so
// it would stay in the namespace and take the process's
// /proc/self/ns/net with it.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// While this goroutine holds the main thread, another
			// can't have it.
			defer runtime.UnlockOSThread()
			errc <- inNetns(path, f)
			return
		}
		// Never unlocked: the thread dies with the goroutine.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open %s: %w", path, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leases are the addresses host-local has handed out on n.
func leases(t *testing.T, n *Network) []string {
	t.Helper()
	var ips []string
	for _, s := range n.shards {
		ents, err := os.ReadDir(filepath.Join(s.dataDir, n.cfg.Name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if _, err := netip.ParseAddr(e.Name()); err == nil {
				ips = append(ips, e.Name())
			}
		}
	}
	return ips
}

func add(t *testing.T, n *Network, id string, ns *netnsProc) netip.Addr {
	t.Helper()
	addr, err := n.Add(ctxT(t), id, ns.path)
	if err != nil {
		t.Fatal(err)
	}
	if !n.cfg.Subnet.Contains(addr) || addr == n.cfg.Subnet.Addr().Next() {
		t.Fatalf("pod %s got %s: want a pod address in %s", id, addr, n.cfg.Subnet)
	}
	return addr
}

// dial connects from the namespace at path.
func dial(path string, to netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := inNetns(path, func() (err error) {
		c, err = net.DialTimeout("tcp", to.String(), 5*time.Second)
		return err
	})
	return c, err
}

// echo listens in the namespace at path (the host's when empty) on addr,
// and echoes one connection.
func echo(t *testing.T, path string, addr netip.Addr) netip.AddrPort {
	t.Helper()
	var l net.Listener
	listen := func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}
	var err error
	if path == "" {
		err = listen()
	} else {
		err = inNetns(path, listen)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// roundTrip sends a line from the namespace at path to an echo at to.
func roundTrip(t *testing.T, path string, to netip.AddrPort) {
	t.Helper()
	c, err := dial(path, to)
	if err != nil {
		t.Fatalf("dial %s: %v", to, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("hello " + to.String() + "\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	// Close our side first and read until the echo closes its: no socket
	// is left waiting for an ACK, keeping a namespace (and its veth)
	// after the test.
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo from %s: %q, %v", to, got, err)
	}
}

// unreachable checks that the namespace at path has no route to addr.
func unreachable(t *testing.T, path string, addr netip.Addr) {
	t.Helper()
	c, err := dial(path, netip.AddrPortFrom(addr, 80))
	if err == nil {
		c.Close()
		t.Fatalf("%s reached %s", path, addr)
	}
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dial %s from %s: %v, want network unreachable", addr, path, err)
	}
}

// routes checks that the only route in the namespace at path is the
// subnet's own, with no gateway.
func routes(t *testing.T, path string, subnet netip.Prefix) {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	rs, err := nl.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("routes of %s: %v", path, rs)
	for _, r := range rs {
		if r.Dst == nil || r.Dst.String() != subnet.String() || r.Gw != nil {
			if r.Dst != nil && r.Dst.IP.To4() == nil && r.Dst.IP.IsLinkLocalUnicast() {
				continue // fe80::/64 of the veth
			}
			t.Errorf("pod has route %s; want only %s", r, subnet)
		}
	}
	if len(rs) == 0 {
		t.Errorf("pod has no route; want %s", subnet)
	}
}

func TestPods(t *testing.T) {
	requireNet(t)
	n := newNetwork(t, netip.Prefix{})
	nsA, nsB := newNetns(t), newNetns(t)
	a := add(t, n, "k8s_a", nsA)
	b := add(t, n, "k8s_b", nsB)
	if a == b {
		t.Fatalf("both pods got %s", a)
	}
	gw := n.cfg.Subnet.Addr().Next()

	t.Run("reach", func(t *testing.T) {
		roundTrip(t, nsB.path, echo(t, nsA.path, a)) // pod to pod
		roundTrip(t, nsA.path, echo(t, nsB.path, b))
		roundTrip(t, nsA.path, echo(t, "", gw)) // pod to node
		roundTrip(t, nsA.path, echo(t, nsA.path, netip.MustParseAddr("127.0.0.1")))
	})
	t.Run("routes", func(t *testing.T) {
		for _, ns := range []*netnsProc{nsA, nsB} {
			routes(t, ns.path, n.cfg.Subnet)
			unreachable(t, ns.path, netip.MustParseAddr("192.0.2.1"))
		}
		// No masquerading: nothing of this network in the NAT table.
		out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
		if err != nil {
			t.Logf("iptables-save: %v: %s", err, out) // no iptables: no NAT either
		} else if strings.Contains(string(out), n.cfg.Name) || strings.Contains(string(out), n.cfg.Subnet.String()) {
			t.Errorf("NAT rules mention the network:\n%s", out)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		again, err := n.Add(ctxT(t), "k8s_a", nsA.path)
		if err != nil || again != a {
			t.Fatalf("Add again: %s, %v; want %s", again, err, a)
		}
		if got := leases(t, n); len(got) != 2 {
			t.Fatalf("leases %v, want 2", got)
		}
		for id, want := range map[string]netip.Addr{"k8s_a": a, "k8s_b": b} {
			if got, ok := n.Addr(id); !ok || got != want {
				t.Errorf("Addr(%s) = %s, %v; want %s", id, got, ok, want)
			}
		}
		if _, ok := n.Addr("k8s_none"); ok {
			t.Error("Addr of a pod never added")
		}
		ids, err := n.Attached()
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, []string{"k8s_a", "k8s_b"}) {
			t.Errorf("Attached() = %v, %v", ids, err)
		}
		// A new Network on the same state, as after an agent restart.
		n2, err := New(n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := n2.Addr("k8s_b"); !ok || got != b {
			t.Errorf("after restart Addr(k8s_b) = %s, %v; want %s", got, ok, b)
		}
	})
	t.Run("new sandbox", func(t *testing.T) {
		nsA2 := newNetns(t)
		a2 := add(t, n, "k8s_a", nsA2)
		if got := leases(t, n); len(got) != 2 {
			t.Fatalf("leases %v, want 2", got)
		}
		roundTrip(t, nsB.path, echo(t, nsA2.path, a2))
		if err := inNetns(nsA.path, func() error {
			if _, err := net.InterfaceByName(IfName); err == nil {
				return errors.New("the former sandbox still has " + IfName)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
}

func TestDel(t *testing.T) {
	requireNet(t)
	// A /30 has room for one pod: .1 is the bridge's.
	n := newNetwork(t, netip.MustParsePrefix("10.235.0.0/30"))
	ctx := ctxT(t)
	nsA, nsB := newNetns(t), newNetns(t)
	a := add(t, n, "k8s_a", nsA)
	if _, err := n.Add(ctx, "k8s_b", nsB.path); err == nil {
		t.Fatal("two pods in a /30")
	} else {
		t.Logf("second pod in a /30: %v", err)
	}
	if got := leases(t, n); !slices.Equal(got, []string{a.String()}) {
		t.Fatalf("a failed Add kept its lease: %v", got)
	}

	if err := n.Del(ctx, "k8s_a", nsA.path); err != nil {
		t.Fatal(err)
	}
	if got := leases(t, n); len(got) != 0 {
		t.Fatalf("leases after Del: %v", got)
	}
	if err := n.Del(ctx, "k8s_a", nsA.path); err != nil {
		t.Fatalf("second Del: %v", err)
	}
	if _, ok := n.Addr("k8s_a"); ok {
		t.Error("Addr of a deleted pod")
	}
	if err := inNetns(nsA.path, func() error {
		if _, err := net.InterfaceByName(IfName); err == nil {
			return errors.New("the deleted pod still has " + IfName)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if b := add(t, n, "k8s_b", nsB); b != a {
		t.Errorf("after Del the second pod got %s, want the freed %s", b, a)
	}

	for _, path := range []string{"vanished", ""} {
		t.Run("netns "+path, func(t *testing.T) {
			if err := n.Del(ctx, "k8s_b", nsB.path); err != nil {
				t.Fatal(err)
			}
			ns := newNetns(t)
			add(t, n, "k8s_c", ns)
			ns.kill()
			if path == "vanished" {
				path = ns.path
			}
			if err := n.Del(ctx, "k8s_c", path); err != nil {
				t.Fatalf("Del with netns %q: %v", path, err)
			}
			if got := leases(t, n); len(got) != 0 {
				t.Fatalf("leases after Del: %v", got)
			}
			if ids, err := n.Attached(); err != nil || len(ids) != 0 {
				t.Fatalf("Attached() = %v, %v", ids, err)
			}
			if err := n.Del(ctx, "k8s_c", path); err != nil {
				t.Fatalf("second Del: %v", err)
			}
			nsB = newNetns(t)
			add(t, n, "k8s_b", nsB)
		})
	}

	t.Run("bad pod id", func(t *testing.T) {
		if err := n.Del(ctx, "../k8s_b", ""); err == nil {
			t.Error("Del of a pod id with a slash")
		}
		if _, ok := n.Addr("../k8s_b"); ok {
			t.Error("Addr of a pod id with a slash")
		}
	})
	t.Run("own netns", func(t *testing.T) {
		if _, err := n.Add(ctx, "k8s_d", "/proc/self/ns/net"); err == nil {
			t.Fatal("Add of the test's own namespace")
		}
		// As when the pod's PID is the agent's now: the agent keeps its eth0.
		if err := n.Del(ctx, "k8s_b", fmt.Sprintf("/proc/%d/ns/net", os.Getpid())); err != nil {
			t.Fatal(err)
		}
		if got := leases(t, n); len(got) != 0 {
			t.Fatalf("leases after Del: %v", got)
		}
	})
}

func TestTwoNetworks(t *testing.T) {
	requireNet(t)
	n1 := newNetwork(t, netip.MustParsePrefix("10.236.1.0/24"))
	n2 := newNetwork(t, netip.MustParsePrefix("10.236.2.0/24"))
	ns1, ns2 := newNetns(t), newNetns(t)
	// One pod id on both: the agents are independent.
	a1 := add(t, n1, "k8s_a", ns1)
	a2 := add(t, n2, "k8s_a", ns2)
	roundTrip(t, ns1.path, echo(t, "", n1.cfg.Subnet.Addr().Next()))
	roundTrip(t, ns2.path, echo(t, "", n2.cfg.Subnet.Addr().Next()))
	unreachable(t, ns1.path, a2)
	unreachable(t, ns2.path, a1)
	if err := n1.Del(ctxT(t), "k8s_a", ns1.path); err != nil {
		t.Fatal(err)
	}
	if got, ok := n2.Addr("k8s_a"); !ok || got != a2 {
		t.Fatalf("other network lost its pod: %s, %v", got, ok)
	}
	roundTrip(t, ns2.path, echo(t, "", n2.cfg.Subnet.Addr().Next()))
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	bridgeOnly := t.TempDir()
	if err := os.Symlink("/usr/lib/cni/bridge", filepath.Join(bridgeOnly, "bridge")); err != nil {
		t.Fatal(err)
	}
	ok := Config{Name: "net", Bridge: "br0", Subnet: netip.MustParsePrefix("10.88.0.0/24"), StateDir: dir}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // in the error; none: no error
	}{
		{"ok", func(*Config) {}, nil},
		{"no plugins", func(c *Config) { c.PluginDirs = []string{t.TempDir()} }, []string{"bridge, host-local, loopback", "containernetworking-plugins"}},
		{"some plugins", func(c *Config) { c.PluginDirs = []string{bridgeOnly} }, []string{"plugins host-local, loopback not found", bridgeOnly}},
		{"long bridge", func(c *Config) { c.Bridge = "troupe-pods-0123" }, []string{"bridge name"}},
		{"bad name", func(c *Config) { c.Name = "a/b" }, []string{"network name"}},
		{"no subnet", func(c *Config) { c.Subnet = netip.Prefix{} }, []string{"no subnet"}},
		{"host bits", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.88.0.1/24") }, []string{"host bits"}},
		{"tiny subnet", func(c *Config) { c.Subnet = netip.MustParsePrefix("10.88.0.0/31") }, []string{"no room"}},
		{"relative state", func(c *Config) { c.StateDir = "state" }, []string{"absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil && tc.want == nil {
				t.Skip("no plugins in /usr/lib/cni")
			}
			c := ok
			tc.edit(&c)
			_, err := New(c)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%+v) succeeded", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestHungPlugin has a bridge plugin that never answers ADD.
func TestHungPlugin(t *testing.T) {
	requireNet(t)
	dir := t.TempDir()
	for _, p := range []string{"host-local", "loopback"} {
		path, err := exec.LookPath(filepath.Join("/usr/lib/cni", p))
		if err != nil {
			t.Skip(err)
		}
		if err := os.Symlink(path, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 60\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Name: "hung", Bridge: "tpnhung", Subnet: netip.MustParsePrefix("10.237.0.0/24"), PluginDirs: []string{dir}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = n.Add(ctx, "k8s_a", ns.path)
	took := time.Since(start)
	t.Logf("after %v: %v", took, err)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"bridge"`) {
		t.Fatalf("Add with a hung bridge plugin: %v; want the deadline and the plugin named", err)
	}
	if took > 5*time.Second {
		t.Errorf("Add took %v past its deadline", took)
	}
}
