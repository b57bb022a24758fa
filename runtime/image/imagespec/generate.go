package imagespec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// DefaultPath is the PATH of a container whose image sets none: Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// StopSignalAnnotation is the spec annotation that carries the image's stop
// signal, the name the OCI image-spec gives it for this conversion.
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

// maxHostname is the kernel's limit on a host name (HOST_NAME_MAX).
const maxHostname = 64

// NOFILE limits: see the package doc.
const (
	nofileSoft = 1024
	nofileHard = 524288
)

// nofile returns the RLIMIT_NOFILE of a container: nofileSoft and
// nofileHard, but no more than the daemon's own hard limit. The runtime
// sets the limit from the daemon's process (prlimit), and raising a hard
// limit takes CAP_SYS_RESOURCE, which a daemon may run without: a higher
// limit would fail every start.
func nofile() specs.POSIXRlimit {
	hard := uint64(nofileHard)
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err == nil && own.Max < hard {
		hard = own.Max
	}
	return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: min(nofileSoft, hard), Hard: hard}
}

// Generate is Policy{}.Generate: the conservative default, with bind
// mounts of host paths refused.
func Generate(id, rootfs string, img Image, o Overrides) (*specs.Spec, error) {
	return Policy{}.Generate(id, rootfs, img, o)
}

// Generate returns the runtime spec of container id run from img, whose
// root file system is rootfs (an absolute path), changed by o. The image's
// /etc/passwd and /etc/group are read inside rootfs to resolve the user.
// Errors carry errclass.InvalidArgument, or errclass.FailedPrecondition for a
// bind mount that p does not allow.
func (p Policy) Generate(id, rootfs string, img Image, o Overrides) (*specs.Spec, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	return p.generate(id, rootfs, img, o, useOpenat2)
}

// GeneratePrepared is Generate for a container made before its id is
// known (a warm pool's). Unless o names a host name, the spec names none
// and the environment has no HOSTNAME: the runtime names the host
// (HostnameOf the id) when the container is claimed, and a process's
// environment is fixed when it is prepared.
func (p Policy) GeneratePrepared(rootfs string, img Image, o Overrides) (*specs.Spec, error) {
	return p.generate("", rootfs, img, o, useOpenat2)
}

// HostnameOf is the host name of container id when its start names none.
func HostnameOf(id string) string { return id[:min(len(id), maxHostname)] }

func (p Policy) generate(id, rootfs string, img Image, o Overrides, r resolver) (*specs.Spec, error) {
	if id != "" {
		if err := runtime.ValidID("container id", id); err != nil {
			return nil, err
		}
	}
	if !filepath.IsAbs(rootfs) {
		return nil, invalid("rootfs %q: must be an absolute path", rootfs)
	}
	rootfs = filepath.Clean(rootfs)
	if fi, err := os.Stat(rootfs); err != nil {
		return nil, invalid("rootfs: %v", err)
	} else if !fi.IsDir() {
		return nil, invalid("rootfs %s: not a directory", rootfs)
	}
	if err := img.Validate(); err != nil {
		return nil, err
	}
	if o.Privileged {
		// A privileged container has every capability, every device, no
		// seccomp filter and writable /sys and /proc: it is the host.
		// Nothing troupe runs needs that, and a daemon that offers it
		// turns every mistake into the machine's.
		return nil, invalid("privileged containers are not supported; add the capabilities the container needs (capAdd) instead")
	}

	args, err := command(img, o)
	if err != nil {
		return nil, err
	}
	userSpec := img.User
	if o.User != "" {
		userSpec = o.User
	}
	u, err := lookupUser(rootfs, userSpec, r)
	if err != nil {
		return nil, err
	}
	hostname, err := hostnameOf(id, o.Hostname)
	if err != nil {
		return nil, err
	}
	env, err := environment(img, o, hostname, u.home)
	if err != nil {
		return nil, err
	}
	cwd := "/"
	if img.WorkingDir != "" {
		cwd = img.WorkingDir
	}
	if o.Cwd != "" {
		if !filepath.IsAbs(o.Cwd) || strings.IndexByte(o.Cwd, 0) >= 0 {
			return nil, invalid("cwd %q: must be an absolute path", o.Cwd)
		}
		cwd = o.Cwd
	}
	caps, err := capabilities(o.CapAdd, o.CapDrop)
	if err != nil {
		return nil, err
	}
	mounts, err := p.mounts(o.Mounts)
	if err != nil {
		return nil, err
	}
	resources, err := resourcesOf(o.Resources)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: o.Terminal,
			User:     specs.User{UID: u.uid, GID: u.gid, AdditionalGids: u.sgids},
			Args:     args,
			Env:      env,
			Cwd:      filepath.Clean(cwd),
			// No inheritable nor ambient set: a program run by a non-root
			// user gets no capability, as it would not on a host.
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{nofile()},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: o.ReadOnlyRoot},
		Hostname: hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Resources: resources,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
				"/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
			Seccomp: DefaultSeccomp(caps),
		},
	}
	if img.StopSignal != "" {
		s.Annotations = map[string]string{StopSignalAnnotation: img.StopSignal}
	}
	return s, nil
}

// command is the init's command line: the entrypoint and its arguments, as
// docker run makes it.
func command(img Image, o Overrides) ([]string, error) {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if o.Entrypoint != nil {
		entrypoint = *o.Entrypoint
		cmd = nil
	}
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, invalid("image has no command and none was given")
	}
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, invalid("args[%d] %q: contains a NUL byte", i, a)
		}
	}
	return args, nil
}

// hostnameOf checks a requested host name, or makes one of the id ("" for
// a container without one yet).
func hostnameOf(id, requested string) (string, error) {
	if requested == "" {
		return HostnameOf(id), nil
	}
	if len(requested) > maxHostname {
		return "", invalid("hostname %q: longer than %d bytes", requested, maxHostname)
	}
	for i := 0; i < len(requested); i++ {
		c := requested[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", invalid("hostname %q: only letters, digits, '-', '.' and '_' are allowed", requested)
		}
	}
	return requested, nil
}

// environment builds the init's environment as Docker does: PATH and
// HOSTNAME first (and TERM with a terminal), which the image's entries
// replace, which the request's replace in turn; an entry that replaces
// another takes its place, a new one is appended. HOME comes last, from
// /etc/passwd, when nobody set it.
func environment(img Image, o Overrides, hostname, home string) ([]string, error) {
	if err := runtime.ValidEnv(o.Env); err != nil {
		return nil, invalid("%v", err)
	}
	env := []string{"PATH=" + DefaultPath}
	if hostname != "" {
		env = append(env, "HOSTNAME="+hostname)
	}
	if o.Terminal {
		env = append(env, "TERM=xterm")
	}
	env = setEnv(env, img.Env)
	env = setEnv(env, o.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+home)
	}
	return env, nil
}

// setEnv replaces or appends each of entries (KEY=value) in env.
func setEnv(env, entries []string) []string {
	for _, e := range entries {
		key, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(env, func(old string) bool {
			k, _, _ := strings.Cut(old, "=")
			return k == key
		})
		if i >= 0 {
			env[i] = e
		} else {
			env = append(env, e)
		}
	}
	return env
}

// defaultMounts are every container's mounts, as runc's and Docker's
// default specs make them, /sys and the cgroup tree read-only.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// mounts returns the default mounts with the requested ones added (a tmpfs
// on /dev/shm replaces the default one).
func (p Policy) mounts(added []Mount) ([]specs.Mount, error) {
	mounts := defaultMounts()
	seen := map[string]int{}
	for i, m := range added {
		dest, err := checkDestination(i, m)
		if err != nil {
			return nil, err
		}
		if j, ok := seen[dest]; ok {
			return nil, invalid("mounts[%d] and mounts[%d]: both on %s", j, i, dest)
		}
		seen[dest] = i
		var sm specs.Mount
		switch m.Type {
		case Tmpfs:
			if m.Source != "" {
				return nil, invalid("mounts[%d]: a tmpfs has no source", i)
			}
			if m.Size < 0 {
				return nil, invalid("mounts[%d].size %d: must not be negative", i, m.Size)
			}
			mode := m.Mode
			if mode == 0 {
				mode = 0o1777
			}
			if mode&^0o7777 != 0 {
				return nil, invalid("mounts[%d].mode %#o: only permission bits are allowed", i, m.Mode)
			}
			opts := []string{"nosuid", "nodev", "mode=" + strconv.FormatUint(uint64(mode), 8)}
			if !m.Exec {
				opts = append(opts, "noexec")
			}
			if m.Size > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.Size, 10))
			}
			sm = specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}
		case Bind:
			src, err := p.checkBindSource(i, m.Source)
			if err != nil {
				return nil, err
			}
			if m.Size != 0 || m.Mode != 0 || m.Exec {
				return nil, invalid("mounts[%d]: size, mode and exec are a tmpfs's", i)
			}
			// nosuid and nodev: a host directory's setuid programs and
			// device nodes are the host's to use, not the container's.
			opts := []string{"rbind", "rprivate", "nosuid", "nodev"}
			sm = specs.Mount{Destination: dest, Type: "bind", Source: src, Options: opts}
		default:
			return nil, invalid("mounts[%d].type %q: want %q or %q", i, m.Type, Tmpfs, Bind)
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		if k := slices.IndexFunc(mounts, func(d specs.Mount) bool { return d.Destination == dest }); k >= 0 {
			mounts[k] = sm
		} else {
			mounts = append(mounts, sm)
		}
	}
	return mounts, nil
}

// resourcesOf turns r into the spec's cgroup settings, with every device
// refused but those the runtime always allows (null, zero, random, tty...).
func resourcesOf(r Resources) (*specs.LinuxResources, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	lr := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if r.Memory != 0 {
		m := r.Memory
		lr.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if r.CPUShares != 0 || r.CPUQuota != 0 {
		lr.CPU = &specs.LinuxCPU{}
		if r.CPUShares != 0 {
			s := r.CPUShares
			lr.CPU.Shares = &s
		}
		if r.CPUQuota != 0 {
			q, period := r.CPUQuota, r.CPUPeriod
			if period == 0 {
				period = 100000
			}
			lr.CPU.Quota, lr.CPU.Period = &q, &period
		}
	} else if r.CPUPeriod != 0 {
		return nil, invalid("resources.cpuPeriod %d: given without a cpuQuota", r.CPUPeriod)
	}
	if r.Pids != 0 {
		n := r.Pids
		lr.Pids = &specs.LinuxPids{Limit: &n}
	}
	return lr, nil
}

func invalid(format string, args ...any) error {
	return errclass.With(errclass.InvalidArgument, fmt.Errorf("imagespec: "+format, args...))
}
