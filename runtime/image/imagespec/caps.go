package imagespec

import (
	"slices"
	"strings"
)

// allCaps are the capabilities Linux knows, in the order of their numbers
// (CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE 40).
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities returns the capability set of a container: Docker's
// default, the one busybox.Spec gives too. It lets root in a container own
// and chmod its files, change users, bind low ports and send raw packets,
// and nothing that reaches beyond its namespaces.
func DefaultCapabilities() []string { return slices.Clone(defaultCaps) }

var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// normalizeCaps turns names as users write them ("net_admin",
// "CAP_NET_ADMIN") into the kernel's, and says whether "ALL" was among them.
func normalizeCaps(field string, names []string) (caps []string, all bool, err error) {
	for i, n := range names {
		upper := strings.ToUpper(strings.TrimSpace(n))
		if upper == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(upper, "CAP_") {
			upper = "CAP_" + upper
		}
		if !slices.Contains(allCaps, upper) {
			return nil, false, invalid("%s[%d] %q: unknown capability", field, i, n)
		}
		if !slices.Contains(caps, upper) {
			caps = append(caps, upper)
		}
	}
	return caps, all, nil
}

// capabilities applies adds and drops to the default set as docker run's
// --cap-add and --cap-drop do: "ALL" added starts from every capability,
// "ALL" dropped from none, then the named drops go and the named adds come.
// Naming one capability in both is refused rather than guessed at.
func capabilities(add, drop []string) ([]string, error) {
	adds, addAll, err := normalizeCaps("capAdd", add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := normalizeCaps("capDrop", drop)
	if err != nil {
		return nil, err
	}
	if addAll && dropAll {
		return nil, invalid("capAdd and capDrop both name ALL")
	}
	for _, c := range adds {
		if slices.Contains(drops, c) {
			return nil, invalid("%s is both in capAdd and in capDrop", c)
		}
	}
	var base []string
	switch {
	case addAll:
		base = allCaps
	case dropAll:
		base = nil
	default:
		base = defaultCaps
	}
	caps := []string{}
	for _, c := range base {
		if !slices.Contains(drops, c) {
			caps = append(caps, c)
		}
	}
	for _, c := range adds {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}
