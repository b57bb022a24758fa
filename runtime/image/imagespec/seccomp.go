package imagespec

import (
	goruntime "runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// denial is a group of system calls that a container is refused unless it
// has one of the capabilities that lift it. The kernel checks those
// capabilities itself too; the filter is a second wall, in front of code
// that has had many bugs or that acts on the whole machine, and it holds
// where a capability check does not reach (a user namespace, where an
// unprivileged process is root of its own).
type denial struct {
	syscalls []string
	// liftedBy are the capabilities of which any one lets the calls
	// through; none means never.
	liftedBy []string
}

// denials is troupe's deny-list: what a container has no business doing
// unless it was given the capability that goes with it. Names a kernel or
// an architecture does not have are skipped by the runtime (stime, vm86 and
// the *64 time calls exist on 32-bit x86 only).
var denials = []denial{
	// Kernel modules run code in the host's kernel.
	{syscalls: []string{"init_module", "finit_module", "delete_module"}, liftedBy: []string{"CAP_SYS_MODULE"}},
	// Another kernel, swap and the key rings are the machine's, not
	// namespaced: no capability in a container should reach them.
	{syscalls: []string{"kexec_load", "kexec_file_load", "swapon", "swapoff", "keyctl", "add_key", "request_key"}},
	// In a pid namespace reboot only ends the container's init.
	{syscalls: []string{"reboot"}, liftedBy: []string{"CAP_SYS_BOOT"}},
	// Mounts and new namespaces: the way out of most container escapes,
	// and a large surface of the kernel for an unprivileged user
	// namespace's fake root. clone's namespace flags have rules of their
	// own (cloneRules).
	{syscalls: []string{"mount", "umount", "umount2", "fsopen", "fsmount", "fsconfig", "fspick",
		"move_mount", "open_tree", "mount_setattr", "pivot_root", "unshare", "setns",
		"quotactl", "quotactl_fd", "lookup_dcookie"}, liftedBy: []string{"CAP_SYS_ADMIN"}},
	{syscalls: []string{"bpf"}, liftedBy: []string{"CAP_SYS_ADMIN", "CAP_BPF"}},
	{syscalls: []string{"perf_event_open"}, liftedBy: []string{"CAP_SYS_ADMIN", "CAP_PERFMON"}},
	// The clocks are the machine's (time namespaces only offset the
	// monotonic and boot clocks, and only from outside).
	{syscalls: []string{"settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64"},
		liftedBy: []string{"CAP_SYS_TIME"}},
	// Raw port I/O.
	{syscalls: []string{"iopl", "ioperm"}, liftedBy: []string{"CAP_SYS_RAWIO"}},
	// A file handle opens any file of a file system, whatever directory it
	// is in: the way out of a container's root through a bind mount.
	{syscalls: []string{"open_by_handle_at", "name_to_handle_at"}, liftedBy: []string{"CAP_DAC_READ_SEARCH"}},
	{syscalls: []string{"acct"}, liftedBy: []string{"CAP_SYS_PACCT"}},
	{syscalls: []string{"syslog"}, liftedBy: []string{"CAP_SYSLOG"}},
	// Reading and writing other processes' memory, comparing their
	// kernel objects, and userfaultfd, the favourite tool of kernel
	// exploits to win races. ptrace itself stays allowed, as Docker allows
	// it on kernels from 4.8, where seccomp is checked again after a
	// tracer changes a system call.
	{syscalls: []string{"kcmp", "process_vm_readv", "process_vm_writev", "userfaultfd"}, liftedBy: []string{"CAP_SYS_PTRACE"}},
	// NUMA placement acts on memory that other containers share.
	{syscalls: []string{"get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "move_pages", "migrate_pages"},
		liftedBy: []string{"CAP_SYS_NICE"}},
	// Obsolete calls with a history of bugs and no use today.
	{syscalls: []string{"nfsservctl", "uselib", "vm86", "vm86old"}},
}

// cloneNamespaceFlags are clone's flags that make namespaces. CLONE_NEWTIME
// is not among them: clone takes it only through clone3 and unshare (its
// bit is part of the exit signal in clone's flags), both denied whole.
var cloneNamespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
}

// DefaultSeccomp returns troupe's default seccomp profile for a container
// with capabilities caps: every system call is allowed but those of the
// deny-list, which fail with EPERM, except the groups that one of caps
// lifts. See the package doc.
func DefaultSeccomp(caps []string) *specs.LinuxSeccomp {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	var denied []string
	for _, d := range denials {
		if !lifted(d.liftedBy, caps) {
			denied = append(denied, d.syscalls...)
		}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: architectures(),
		Syscalls: []specs.LinuxSyscall{
			{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm},
		},
	}
	if !slices.Contains(caps, "CAP_SYS_ADMIN") {
		s.Syscalls = append(s.Syscalls, cloneRules(eperm)...)
		// A filter cannot read clone3's flags (they are in memory, behind
		// a pointer), so clone3 fails as if the kernel lacked it: C
		// libraries then fall back to clone, whose flags the rules see.
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys,
		})
	}
	return s
}

// cloneRules deny clone with any namespace flag. A seccomp comparison tests
// one condition per argument in a rule, and masked equality tests that
// (flags & mask) == value, so "any of these bits" is one rule per bit:
// (flags & bit) == bit. Rules of one call are alternatives: any that
// matches denies it.
func cloneRules(errno uint) []specs.LinuxSyscall {
	rules := make([]specs.LinuxSyscall, 0, len(cloneNamespaceFlags))
	for _, bit := range cloneNamespaceFlags {
		rules = append(rules, specs.LinuxSyscall{
			Names:    []string{"clone"},
			Action:   specs.ActErrno,
			ErrnoRet: &errno,
			// Index 0 is the flags on every architecture here (s390 alone
			// swaps clone's first two arguments).
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: bit, ValueTwo: bit, Op: specs.OpMaskedEqual}},
		})
	}
	return rules
}

// architectures are those whose system calls the filter covers: the
// machine's own and the others its kernel also runs (32-bit x86 and x32
// binaries on x86_64). A call through an architecture left out is refused
// by the filter whatever its number: leaving one out cannot open a hole.
func architectures() []specs.Arch {
	switch goruntime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	// The runtime adds the native architecture itself.
	return nil
}

func lifted(by, caps []string) bool {
	for _, c := range by {
		if slices.Contains(caps, c) {
			return true
		}
	}
	return false
}
