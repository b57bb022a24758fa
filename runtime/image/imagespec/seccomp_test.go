package imagespec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestDefaultSeccomp(t *testing.T) {
	tests := []struct {
		name         string
		caps         []string
		denied       []string
		allowed      []string
		cloneLimited bool
	}{
		{
			name: "default capabilities",
			caps: DefaultCapabilities(),
			denied: []string{"mount", "umount2", "fsopen", "move_mount", "open_tree", "pivot_root", "unshare", "setns",
				"init_module", "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "keyctl", "bpf",
				"perf_event_open", "userfaultfd", "acct", "settimeofday", "clock_settime", "iopl", "ioperm",
				"open_by_handle_at", "syslog", "kcmp", "process_vm_readv", "mbind", "vm86"},
			allowed:      []string{"ptrace", "personality", "read", "clone", "chown", "setuid"},
			cloneLimited: true,
		},
		{
			name:    "CAP_SYS_ADMIN",
			caps:    append(DefaultCapabilities(), "CAP_SYS_ADMIN"),
			denied:  []string{"init_module", "kexec_load", "keyctl", "clock_settime"},
			allowed: []string{"mount", "unshare", "setns", "pivot_root", "bpf", "perf_event_open", "clone3"},
		},
		{
			name:         "CAP_SYS_TIME, CAP_SYS_MODULE, CAP_SYS_PTRACE",
			caps:         []string{"CAP_SYS_TIME", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"},
			denied:       []string{"mount", "kexec_load", "swapon"},
			allowed:      []string{"settimeofday", "clock_adjtime", "init_module", "delete_module", "process_vm_writev", "kcmp"},
			cloneLimited: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSeccomp(tt.caps)
			if s.DefaultAction != specs.ActAllow {
				t.Errorf("default action %s, want allow", s.DefaultAction)
			}
			for _, n := range tt.denied {
				if !denied(s, n) {
					t.Errorf("%s is not denied", n)
				}
			}
			for _, n := range tt.allowed {
				if denied(s, n) {
					t.Errorf("%s is denied", n)
				}
			}
			for _, r := range s.Syscalls {
				if r.Action == specs.ActErrno && (r.ErrnoRet == nil || (*r.ErrnoRet != uint(unix.EPERM) && *r.ErrnoRet != uint(unix.ENOSYS))) {
					t.Errorf("rule %+v: want EPERM or ENOSYS", r)
				}
			}
			var bits uint64
			clone3 := false
			for _, r := range s.Syscalls {
				if slices.Equal(r.Names, []string{"clone"}) {
					if len(r.Args) != 1 || r.Args[0].Op != specs.OpMaskedEqual || r.Args[0].Index != 0 || r.Args[0].Value != r.Args[0].ValueTwo {
						t.Errorf("clone rule %+v: want (flags & bit) == bit", r)
					}
					bits |= r.Args[0].Value
				}
				if slices.Equal(r.Names, []string{"clone3"}) && *r.ErrnoRet == uint(unix.ENOSYS) {
					clone3 = true
				}
			}
			want := uint64(0)
			if tt.cloneLimited {
				want = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
					unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
			}
			if bits != want || clone3 != tt.cloneLimited {
				t.Errorf("clone flags denied %#x (clone3 ENOSYS %v), want %#x (%v)", bits, clone3, want, tt.cloneLimited)
			}
		})
	}
}
