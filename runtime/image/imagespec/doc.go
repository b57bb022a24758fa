// Package imagespec makes the OCI runtime spec of a container started from
// an image: what the image's configuration says (its command, environment,
// user, working directory, stop signal), changed by what the start request
// asks, on top of troupe's defaults for every container. It sits between the
// image store (package layer and what pulls and mounts images) and the
// runtime, which takes the spec as a bundle's config.json.
//
//	img, err := imagespec.ParseImage(configBlob)
//	spec, err := imagespec.Policy{AllowBinds: false}.Generate(id, rootfs, img, imagespec.Overrides{
//		Args: []string{"nginx", "-g", "daemon off;"},
//		Env:  []string{"NGINX_PORT=8080"},
//		User: "nginx",
//	})
//
// # The image and the request
//
// The request wins, with the meanings Docker gave them: an entrypoint given
// replaces the image's and drops its Cmd, arguments replace Cmd, an
// environment entry replaces the image's of the same name where it stands,
// a user or working directory replaces the image's. The command line is the
// entrypoint followed by the arguments; with neither, Generate refuses
// ("image has no command and none was given"). The environment starts with
// PATH (DefaultPath, which the image's PATH replaces) and HOSTNAME, and ends
// with HOME, from the user's /etc/passwd entry ("/" without one), unless it
// is set.
//
// # The user
//
// A user is "name", "uid", "name:group", "uid:gid" or a mix, looked up in the
// image's /etc/passwd and /etc/group as Docker does: a uid that is not there
// runs with gid 0, a name that is not there is an error. The image is hostile
// input, and its files are read as the container would see them, not as the
// host does: with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) relative to
// the rootfs (or, on kernels without it, a symlink walk that stays inside the
// rootfs), so that /etc/passwd as a symlink to "/etc/shadow" or to
// "../../../etc/shadow" reads the image's own file, or nothing. Only a
// regular file is read, and at most 1 MiB of it; a FIFO or a device is
// refused without being opened.
//
// # Every container's defaults
//
// Fresh pid, network, ipc, uts and mount namespaces; /proc, a tmpfs /dev with
// /dev/pts, /dev/shm and /dev/mqueue, /sys and the cgroup tree read-only; the
// masked and read-only /proc paths of runc's and Docker's default specs;
// no_new_privileges; every device refused but those runc always allows;
// Docker's 14 default capabilities (DefaultCapabilities), which CapAdd and
// CapDrop change as docker run's --cap-add and --cap-drop do. The host name
// is the container's id unless the request gives one.
//
// RLIMIT_NOFILE is 1024 soft and 524288 hard, systemd's choice for
// services: a soft limit above 1024 breaks programs that use select(2) or
// that close every descriptor up to the limit before an exec (Docker's
// 1048576 makes that a million system calls per fork), and 1024 hard would
// stop the servers that need more (they raise their soft limit themselves,
// as they do on a host). The hard limit is no more than the daemon's own:
// raising it takes CAP_SYS_RESOURCE, which a daemon may lack.
//
// Privileged containers are refused: one has every capability, every
// device, no seccomp filter and a writable /sys, so it is the host, and
// nothing a request for an image needs. Add the capabilities needed.
//
// The image's labels are not copied into the spec's annotations. Annotations
// are instructions to the runtime and its hooks (runc reads org.criu.config
// from them, other runtimes run.oci.* and org.systemd.property.*), and an
// image must not be able to give the runtime instructions. Only the stop
// signal is passed, under StopSignalAnnotation, the key the OCI image-spec
// names for it.
//
// # Mounts
//
// A request may add tmpfs mounts (a size, a mode, noexec unless Exec) and,
// when the daemon's Policy allows binds, bind mounts of host paths,
// read-only or not, always nosuid and nodev. Nothing may be mounted on "/" or
// under /proc, /sys or /dev, but a tmpfs may replace /dev/shm. No bind may
// show "/", /proc, /sys, /dev or a path of Policy.Denied (the daemon's own
// directories), nor a directory above one of them, symlinks resolved.
//
// # The seccomp profile
//
// DefaultSeccomp is troupe's own deny-list: every system call is allowed but
// a small set that a container has no business making, which fail with
// EPERM. They are grouped by the capability that the kernel itself asks for
// them, and a capability added to the container lifts its group, so that
// CapAdd does what it says:
//
//	CAP_SYS_ADMIN        mount and the new mount API, pivot_root, unshare, setns,
//	                     clone with a namespace flag, clone3, quotactl, bpf, perf_event_open
//	CAP_SYS_MODULE       init_module, finit_module, delete_module
//	CAP_SYS_BOOT         reboot (in a pid namespace it ends the container)
//	CAP_SYS_TIME         settimeofday, stime, clock_settime, clock_adjtime
//	CAP_SYS_RAWIO        iopl, ioperm
//	CAP_DAC_READ_SEARCH  open_by_handle_at, name_to_handle_at
//	CAP_SYS_PTRACE       kcmp, process_vm_readv/writev, userfaultfd
//	CAP_SYS_NICE         get/set_mempolicy, mbind, move_pages, migrate_pages
//	CAP_SYS_PACCT        acct
//	CAP_SYSLOG           syslog
//	CAP_BPF, CAP_PERFMON bpf, perf_event_open
//	never                kexec_load, kexec_file_load, swapon, swapoff, keyctl,
//	                     add_key, request_key, nfsservctl, uselib, vm86, vm86old
//
// clone is allowed unless its flags ask for a namespace: a filter compares
// one value per argument and rule, so there is one rule per CLONE_NEW* bit,
// "(flags & bit) == bit". clone3 keeps its flags in memory, where a filter
// cannot look, so it fails with ENOSYS: the C libraries then fall back to
// clone. ptrace is allowed, as Docker allows it on kernels from 4.8 (which
// check the filter again after a tracer changes a call). personality is
// allowed whatever its argument: Docker's profile accepts only a few
// personalities, but a deny-list cannot say "anything but these" to
// libcontainer, which turns several conditions on one argument into
// alternatives, and what the others do (no address randomization for the
// caller's own children, 32-bit layouts) stays inside the process.
//
// The filter covers the x86 architectures on x86_64 (x86_64, x86, x32) and
// arm64 and arm on arm64; system calls of other architectures are refused.
//
// # Validation
//
// Generate checks what it takes (ids, paths, limits, capability names) and
// errors carry errclass.InvalidArgument, or errclass.FailedPrecondition for a bind
// mount the daemon does not allow. The spec is checked once more when the
// runtime loads it as a bundle (package bundle): its checks are not exported
// on their own, and a spec is only a spec once written into a bundle.
// Terminals pass here but that check refuses them, as the runtime cannot give
// one yet.
package imagespec
