package podnet

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestBridgeWithoutMAC: a bridge that lost its last port without its MAC
// ever set has none (all zeros); the next pod is attached all the same.
func TestBridgeWithoutMAC(t *testing.T) {
	requireNet(t)
	n := newNetwork(t, netip.Prefix{})
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.cfg.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	suffix := randHex(t, 3)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tpv" + suffix, MasterIndex: br.Attrs().Index}, PeerName: "tpp" + suffix}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(veth); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if mac := l.Attrs().HardwareAddr; !zeroMAC(mac) {
		t.Logf("this kernel leaves a bridge without ports MAC %s, not all zeros: the case does not arise", mac)
	}
	add(t, n, "no-mac", newNetns(t))
}
