// Package busybox builds small OCI bundles around a statically linked busybox.
// Tests use them to start real containers without a network or an image
// store, and the benchmark uses them as its default workload.
//
// The host needs Debian's busybox-static (/bin/busybox). A rootfs is a
// directory with a private copy of busybox and a symlink per applet; it may be
// shared read-only by many bundles:
//
//	rootfs, err := busybox.Rootfs(filepath.Join(dir, "rootfs"))
//	b, err := busybox.Bundle(filepath.Join(dir, "b1"), busybox.Options{
//		Rootfs: rootfs, Args: []string{"sleep", "60"}})
package busybox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Binary is where Debian's busybox-static installs busybox.
const Binary = "/bin/busybox"

// Options shape a bundle. The zero value runs "sleep 3600" in fresh
// namespaces with a writable private rootfs.
type Options struct {
	// Rootfs is an existing busybox rootfs to use (made read-only in the spec,
	// as it may be shared); empty makes a private one inside the bundle.
	Rootfs string
	// Args is the init's command line; default sleep 3600.
	Args []string
	// Env is added to the default PATH and TERM.
	Env []string
	// ReadOnly makes the root filesystem read-only.
	ReadOnly bool
	// Seccomp is the seccomp profile, if any.
	Seccomp *specs.LinuxSeccomp
	// UIDMappings and GIDMappings, when set, put the container in a user
	// namespace with those mappings.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
	// MemoryLimit in bytes, 0 for none.
	MemoryLimit int64
	// PidsLimit, 0 for none.
	PidsLimit int64
	// NoCgroupMount leaves /sys/fs/cgroup out of the container's mounts: on a
	// cgroup v1 host that mount is a tmpfs plus a bind per hierarchy, a large
	// share of a start's cost.
	NoCgroupMount bool
	// NoHostname leaves the hostname ("busybox") out, as a bundle that joins
	// another container's UTS namespace must.
	NoHostname bool
}

// Rootfs makes a busybox root filesystem at dir (if it is not there already)
// and returns dir.
func Rootfs(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err == nil {
		return dir, nil
	}
	applets, err := exec.Command(Binary, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox: list applets of %s (is busybox-static installed?): %w", Binary, err)
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("busybox: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	// A copy, never a hard link: a container's root could otherwise write
	// through it to the host's busybox.
	if err := copyFile(Binary, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("busybox: %w", err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("busybox: %w", err)
		}
	}
	return dir, nil
}

// Bundle writes a bundle at dir and returns dir.
func Bundle(dir string, o Options) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	rootfs := o.Rootfs
	if rootfs == "" {
		var err error
		if rootfs, err = Rootfs(filepath.Join(dir, "rootfs")); err != nil {
			return "", err
		}
		rootfs = "rootfs"
	} else {
		o.ReadOnly = true
	}
	data, err := json.MarshalIndent(Spec(rootfs, o), "", "\t")
	if err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	return dir, nil
}

// Spec returns the runtime spec of a busybox container rooted at rootfs: the
// shape of a default OCI spec (fresh pid, mount, ipc, uts and network
// namespaces, masked /proc paths, a docker-like capability set,
// no_new_privileges).
func Spec(rootfs string, o Options) *specs.Spec {
	args := o.Args
	if len(args) == 0 {
		args = []string{"sleep", "3600"}
	}
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}, o.Env...),
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: o.ReadOnly},
		Hostname: "busybox",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
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
			Seccomp: o.Seccomp,
		},
	}
	if o.NoHostname {
		s.Hostname = ""
	}
	if !o.NoCgroupMount {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
			Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
		})
	}
	if len(o.UIDMappings) > 0 || len(o.GIDMappings) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = o.UIDMappings
		s.Linux.GIDMappings = o.GIDMappings
	}
	if o.MemoryLimit > 0 {
		limit := o.MemoryLimit
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if o.PidsLimit > 0 {
		limit := o.PidsLimit
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return s
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
