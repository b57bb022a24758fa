package podnet

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// A network's addresses are split into shards: ranges of the subnet, each
// with a host-local dataDir of its own. host-local reads every lease in
// its dataDir on each ADD and DEL, looking for the pod's own, so with one
// dataDir a pod's ADD cost grows with the pods attached (measured here:
// 17 ms with none, 65 ms with 1500, one ADD at a time), and every ADD and
// DEL waits for the one lock. A pod's shard is picked by a hash of its id;
// a full shard passes the pod on to the next one.
const (
	maxShards    = 32
	minShardSize = 64
)

// shard is one range of the subnet's addresses and its leases.
type shard struct {
	list *libcni.NetworkConfigList
	// first and last bound the range, both included; invalid for an IPv6
	// subnet, which is one shard of all its addresses.
	first, last netip.Addr
	dataDir     string
}

func (s *shard) contains(a netip.Addr) bool {
	return !s.first.IsValid() || (a.Compare(s.first) >= 0 && a.Compare(s.last) <= 0)
}

// Addresses is how many pods subnet has addresses for: all of its
// addresses but the network address, the bridge's and, in IPv4, the
// broadcast address (at most MaxInt).
func Addresses(subnet netip.Prefix) int {
	host := subnet.Addr().BitLen() - subnet.Bits()
	if host >= 62 {
		return math.MaxInt
	}
	n := 1<<host - 2
	if subnet.Addr().Is4() {
		n--
	}
	return max(n, 0)
}

// shardRanges splits an IPv4 subnet's pod addresses (all but the network
// address, the bridge's first one and the broadcast address) into ranges
// of at least minShardSize, at most maxShards of them. An IPv6 subnet is
// not split: one range of invalid bounds stands for all of it.
func shardRanges(subnet netip.Prefix) [][2]netip.Addr {
	if !subnet.Addr().Is4() {
		return [][2]netip.Addr{{}}
	}
	a4 := subnet.Addr().As4()
	base := uint64(binary.BigEndian.Uint32(a4[:]))
	size := uint64(1) << (32 - subnet.Bits())
	first, last := base+2, base+size-2
	n := last - first + 1
	k := min(max(n/minShardSize, 1), maxShards)
	ranges := make([][2]netip.Addr, 0, k)
	for i := range k {
		lo := first + i*(n/k)
		hi := lo + n/k - 1
		if i == k-1 {
			hi = last
		}
		ranges = append(ranges, [2]netip.Addr{addr4(lo), addr4(hi)})
	}
	return ranges
}

func addr4(v uint64) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b)
}

// shards makes the network's shards.
func (cfg Config) shards() ([]shard, error) {
	var shards []shard
	for i, r := range shardRanges(cfg.Subnet) {
		s := shard{first: r[0], last: r[1], dataDir: filepath.Join(cfg.StateDir, "leases", strconv.Itoa(i))}
		conf, err := json.Marshal(conflist(cfg, s))
		if err != nil {
			return nil, err
		}
		if s.list, err = libcni.ConfListFromBytes(conf); err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// shardOf is the shard a pod tries first.
func (n *Network) shardOf(podID string) int {
	h := fnv.New32a()
	h.Write([]byte(podID))
	return int(h.Sum32() % uint32(len(n.shards)))
}

// shardHolding is the shard of a pod's lease: the one its cached address
// is in, else the one it tries first.
func (n *Network) shardHolding(podID string) *shard {
	if a, ok := n.Addr(podID); ok {
		for i := range n.shards {
			if n.shards[i].contains(a) {
				return &n.shards[i]
			}
		}
	}
	return &n.shards[n.shardOf(podID)]
}

// full tells whether an ADD failed for want of a free address in its range
// (host-local's error).
func full(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no IP addresses available")
}

// migrateLeases moves leases kept in the one dataDir of earlier agents
// (<StateDir>/ipam/<name>/<address>) into the shards that hold their
// addresses, so that none is handed out twice.
func (n *Network) migrateLeases() error {
	old := filepath.Join(n.cfg.StateDir, "ipam", n.cfg.Name)
	ents, err := os.ReadDir(old)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("leases of an earlier agent: %w", err)
	}
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue // host-local's lock and last-reserved files
		}
		s := &n.shards[0]
		for i := range n.shards {
			if n.shards[i].contains(a) {
				s = &n.shards[i]
			}
		}
		dir := filepath.Join(s.dataDir, n.cfg.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("leases of an earlier agent: %w", err)
		}
		if err := os.Rename(filepath.Join(old, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("leases of an earlier agent: %w", err)
		}
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("leases of an earlier agent: %w", err)
	}
	_ = os.Remove(filepath.Dir(old)) // if no other network's are there
	return nil
}
