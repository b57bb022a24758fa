package podnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// bridgeReady gives the bridge, if it is there without a MAC address,
// one of its own. A bridge whose MAC nobody set takes one of its ports',
// and all zeros once its last port is gone; the bridge plugin (1.1) then
// fails every ADD when it sets that MAC back ("could not set bridge's
// mac: invalid argument"). The plugin sets the MAC itself at its first
// ADD that succeeds; one that failed half-way (its veth on the bridge, no
// address to be had) leaves it to the kernel.
func (n *Network) bridgeReady() error {
	l, err := netlink.LinkByName(n.cfg.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil // the plugin makes it
	} else if err != nil {
		return fmt.Errorf("bridge %s: %w", n.cfg.Bridge, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return nil // not ours: the plugin's error to give
	}
	if !zeroMAC(l.Attrs().HardwareAddr) {
		return nil
	}
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return err
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
		return fmt.Errorf("bridge %s: give it a MAC address: %w", n.cfg.Bridge, err)
	}
	return nil
}

// zeroMAC tells whether mac is all zeros (or, as netlink reports those at
// times, empty).
func zeroMAC(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return true
}
