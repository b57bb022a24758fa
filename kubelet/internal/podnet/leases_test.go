package podnet

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestShardRanges(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		want   [][2]string
	}{
		{"10.0.0.0/30", [][2]string{{"10.0.0.2", "10.0.0.2"}}},
		{"10.0.0.0/25", [][2]string{{"10.0.0.2", "10.0.0.126"}}},
		{"10.0.0.0/24", [][2]string{{"10.0.0.2", "10.0.0.85"}, {"10.0.0.86", "10.0.0.169"}, {"10.0.0.170", "10.0.0.254"}}},
		{"10.0.0.0/16", nil}, // 32 ranges, checked below
		{"fd00::/64", [][2]string{{"invalid IP", "invalid IP"}}},
	} {
		t.Run(tc.subnet, func(t *testing.T) {
			subnet := netip.MustParsePrefix(tc.subnet)
			got := shardRanges(subnet)
			if tc.want != nil {
				var g [][2]string
				for _, r := range got {
					g = append(g, [2]string{r[0].String(), r[1].String()})
				}
				if fmt.Sprint(g) != fmt.Sprint(tc.want) {
					t.Fatalf("shardRanges(%s) = %v, want %v", subnet, g, tc.want)
				}
			}
			if !subnet.Addr().Is4() {
				return
			}
			if len(got) > maxShards {
				t.Fatalf("%d ranges, more than %d", len(got), maxShards)
			}
			// The ranges tile the pod addresses: no gaps, no overlaps, the
			// network address, the bridge's and the broadcast address left out.
			next := subnet.Addr().Next().Next()
			for _, r := range got {
				if r[0] != next || r[1].Less(r[0]) || !subnet.Contains(r[1]) {
					t.Fatalf("range %v does not follow on from %v", r, next)
				}
				next = r[1].Next()
			}
			if subnet.Contains(next.Next()) || !subnet.Contains(next) {
				t.Fatalf("the ranges end at %v, not before the broadcast address", next.Prev())
			}
		})
	}
}

// TestFullShard fills the range a pod tries first (as host-local records
// leases) and checks that the pod gets an address of the next range, and
// that Del releases it there.
func TestFullShard(t *testing.T) {
	requireNet(t)
	n := newNetwork(t, netip.MustParsePrefix("10.235.7.0/24"))
	if len(n.shards) < 2 {
		t.Fatalf("%d shards on a /24, want several", len(n.shards))
	}
	var id string
	for i := 0; ; i++ {
		if id = fmt.Sprintf("full-%d", i); n.shardOf(id) == 0 {
			break
		}
	}
	s := n.shards[0]
	dir := filepath.Join(s.dataDir, n.cfg.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for a := s.first; a.Compare(s.last) <= 0; a = a.Next() {
		if err := os.WriteFile(filepath.Join(dir, a.String()), []byte("someone-else\r\neth0"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ns := newNetns(t)
	addr := add(t, n, id, ns)
	if s.contains(addr) || !n.shards[1].contains(addr) {
		t.Fatalf("pod %s got %v; want an address of the next range, %v-%v", id, addr, n.shards[1].first, n.shards[1].last)
	}
	if err := n.Del(ctxT(t), id, ns.path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(n.shards[1].dataDir, n.cfg.Name, addr.String())); !os.IsNotExist(err) {
		t.Fatalf("the lease of %v is still there after Del (%v)", addr, err)
	}
}

// TestMigrateLeases: the leases of an agent that kept them in one
// directory move to the ranges holding their addresses, so that none is
// handed out again.
func TestMigrateLeases(t *testing.T) {
	state := t.TempDir()
	cfg := Config{Name: "migrate", Bridge: "tpmigrate", Subnet: netip.MustParsePrefix("10.235.8.0/24"), StateDir: state}
	old := filepath.Join(state, "ipam", cfg.Name)
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"10.235.8.2": "a\r\neth0", "10.235.8.200": "b\r\neth0", "lock": "", "last_reserved_ip.0": "10.235.8.200"} {
		if err := os.WriteFile(filepath.Join(old, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{"10.235.8.2": "a\r\neth0", "10.235.8.200": "b\r\neth0"} {
		a := netip.MustParseAddr(ip)
		var s *shard
		for i := range n.shards {
			if n.shards[i].contains(a) {
				s = &n.shards[i]
			}
		}
		got, err := os.ReadFile(filepath.Join(s.dataDir, cfg.Name, ip))
		if err != nil || string(got) != want {
			t.Errorf("lease %s in its range: %q, %v; want %q", ip, got, err, want)
		}
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the old lease directory is still there (%v)", err)
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		want   int
	}{
		{"10.0.0.0/30", 1},
		{"10.0.0.0/31", 0},
		{"10.0.0.0/32", 0},
		{"10.88.0.0/24", 253},
		{"10.88.0.0/21", 2045},
		{"fd00::/126", 2},
		{"fd00::/64", math.MaxInt},
	} {
		if got := Addresses(netip.MustParsePrefix(tc.subnet)); got != tc.want {
			t.Errorf("Addresses(%s) = %d, want %d", tc.subnet, got, tc.want)
		}
	}
}
