package imagespec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// Overrides are what a start request may change of what the image says,
// with the meaning Docker and containerd users know. The zero value runs
// the image as it is.
type Overrides struct {
	// Entrypoint, when not nil, replaces the image's entrypoint; an empty
	// list clears it. As with docker run --entrypoint, it also drops the
	// image's Cmd: the image's arguments were written for its entrypoint.
	Entrypoint *[]string
	// Args, when not empty, replace the image's Cmd.
	Args []string
	// Env entries (KEY=value) replace the image's entries of the same key,
	// where they are, or are appended, in their order.
	Env []string
	// Cwd replaces the image's working directory; absolute.
	Cwd string
	// User replaces the image's user: "name", "uid", "name:group",
	// "uid:gid", "name:gid" or "uid:group", looked up in the image.
	User string
	// Hostname is the container's host name; default its id (its first 64
	// characters, the kernel's limit).
	Hostname string
	// ReadOnlyRoot makes the root file system read-only.
	ReadOnlyRoot bool
	// Terminal gives the init a terminal (and TERM=xterm unless the
	// environment sets TERM). troupe's runtime does not give terminals yet
	// and refuses such a bundle when it loads it.
	Terminal bool
	// Resources are the cgroup limits.
	Resources Resources
	// Mounts are added to the default ones (see Mount for what is allowed).
	Mounts []Mount
	// CapAdd and CapDrop change the default capability set (see the package
	// doc): "CAP_NET_ADMIN" or "NET_ADMIN", in any case, or "ALL".
	CapAdd, CapDrop []string
	// Privileged is refused: see the package doc.
	Privileged bool
}

// Resources are a container's cgroup limits. A zero field sets nothing.
type Resources struct {
	// Memory is the memory limit in bytes: -1 (none) or at least
	// runtime.MinMemory.
	Memory int64
	// CPUShares is the relative CPU weight, runtime.MinCPUShares to
	// runtime.MaxCPUShares.
	CPUShares uint64
	// CPUQuota is the CPU time, in microseconds, the container may use in
	// each CPUPeriod: 150000 with the default period is one and a half CPUs.
	CPUQuota int64
	// CPUPeriod is the quota's period in microseconds; default 100000 when
	// a quota is set.
	CPUPeriod uint64
	// Pids is the most processes the container may have: -1 (none) or
	// more than 0.
	Pids int64
}

// MountType is the kind of an added mount.
type MountType string

// The mounts a request may add.
const (
	// Tmpfs is a fresh, empty tmpfs; its pages count against the
	// container's memory limit.
	Tmpfs MountType = "tmpfs"
	// Bind shows a host directory or file in the container, if the daemon
	// allows it (Policy.AllowBinds).
	Bind MountType = "bind"
)

// Mount is a mount added to a container.
type Mount struct {
	Type MountType
	// Destination is the absolute path in the container. It may not be
	// "/" nor lie under /proc, /sys or /dev (but /dev/shm may be replaced
	// by a tmpfs): those are the runtime's, and masked paths live there.
	Destination string
	// Source is the absolute host path of a bind mount.
	Source string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Size bounds a tmpfs, in bytes; 0 is the kernel's default (half the
	// machine's memory), bounded in practice by the memory limit.
	Size int64
	// Mode is a tmpfs's permission bits; 0 means 01777, as /tmp.
	Mode uint32
	// Exec lets programs run from a tmpfs; by default it is noexec, as
	// Docker's --tmpfs.
	Exec bool
}

// Policy is what the daemon, not a request, decides about the specs it
// generates.
type Policy struct {
	// AllowBinds lets requests bind host paths into containers. Anyone who
	// may start a container is root on the machine already (the API is
	// root-equivalent: a container with CAP_SYS_ADMIN added, or the bundle
	// API itself, gets there), so this is not a security boundary against
	// the caller; it keeps a daemon that does not need binds from offering
	// the easiest way to hurt the host by mistake. Off by default.
	AllowBinds bool
	// Denied are host paths that no bind may show, nor any directory
	// above them: the daemon's own root and state directories. "/",
	// /proc, /sys and /dev are always denied.
	Denied []string
}

// alwaysDenied are the host paths that no bind mount may expose: the root
// would expose everything, and /proc, /sys and /dev hand out the kernel's
// controls (sysrq-trigger, the host's block devices, every process).
var alwaysDenied = []string{"/proc", "/sys", "/dev"}

// validate checks r against the kernel's bounds.
func (r Resources) validate() error {
	if m := r.Memory; m != 0 && m != -1 && m < runtime.MinMemory {
		return invalid("resources.memory %d: must be -1 (no limit) or at least %d bytes (%d MiB)", m, runtime.MinMemory, runtime.MinMemory>>20)
	}
	if s := r.CPUShares; s != 0 && (s < runtime.MinCPUShares || s > runtime.MaxCPUShares) {
		return invalid("resources.cpuShares %d: must be between %d and %d", s, runtime.MinCPUShares, runtime.MaxCPUShares)
	}
	// The kernel's bounds for cfs_quota_us and cfs_period_us: 1 ms to 1 s
	// for the period, at least 1 ms for the quota.
	if q := r.CPUQuota; q != 0 && q != -1 && q < 1000 {
		return invalid("resources.cpuQuota %d: must be -1 (no limit) or at least 1000 microseconds", q)
	}
	if p := r.CPUPeriod; p != 0 && (p < 1000 || p > 1000000) {
		return invalid("resources.cpuPeriod %d: must be between 1000 and 1000000 microseconds", p)
	}
	if p := r.Pids; p < -1 {
		return invalid("resources.pids %d: must be -1 (no limit) or more than 0", p)
	}
	return nil
}

// checkDestination checks an added mount's destination and returns it
// cleaned.
func checkDestination(i int, m Mount) (string, error) {
	d := m.Destination
	if !filepath.IsAbs(d) || strings.IndexByte(d, 0) >= 0 {
		return "", invalid("mounts[%d].destination %q: must be an absolute path", i, d)
	}
	d = filepath.Clean(d)
	if d == "/" {
		return "", invalid("mounts[%d].destination %q: cannot mount over the root", i, m.Destination)
	}
	if m.Type == Tmpfs && d == "/dev/shm" {
		return d, nil
	}
	for _, p := range alwaysDenied {
		if within(d, p) {
			return "", invalid("mounts[%d].destination %q: %s belongs to the runtime", i, m.Destination, p)
		}
	}
	return d, nil
}

// checkBindSource checks a bind mount's source against p and returns its
// real path. The check is on the real path, symlinks resolved: a link to
// "/" is "/". A source replaced between this check and the mount escapes
// it; the caller is root-equivalent anyway (see Policy.AllowBinds).
func (p Policy) checkBindSource(i int, src string) (string, error) {
	if !p.AllowBinds {
		return "", errclass.With(errclass.FailedPrecondition, fmt.Errorf("imagespec: mounts[%d]: bind mounts of host paths are not allowed on this daemon (it runs without --allow-binds)", i))
	}
	if !filepath.IsAbs(src) || strings.IndexByte(src, 0) >= 0 {
		return "", invalid("mounts[%d].source %q: must be an absolute host path", i, src)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", invalid("mounts[%d].source %q: %v", i, src, err)
	}
	if real == "/" {
		return "", invalid("mounts[%d].source %q: binding the host's root is not allowed", i, src)
	}
	for _, d := range append(append([]string(nil), alwaysDenied...), p.Denied...) {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r
		}
		// Above a denied directory is as bad as in it: binding /var/lib
		// shows /var/lib/troupe.
		if within(real, d) || within(d, real) {
			return "", invalid("mounts[%d].source %q (%s): binding %s, or a path above or below it, is not allowed", i, src, real, d)
		}
	}
	return real, nil
}

// within reports whether p is dir or lies below it; both clean and
// absolute.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
