package runtime

import (
	"fmt"
	"path"
	"strings"

	"github.com/troupe-run/troupe/errclass"
)

// MaxUserID is the highest uid or gid a process may be given. Ids are 32
// bits in the kernel, and the all-ones value, 4294967295, is (uid_t)-1:
// setuid(-1) means "leave it as it is", so a process asked to run as that id
// would keep running as root. An id above it would be cut to 32 bits on its
// way to the kernel (4294967296 is 0, root).
const MaxUserID = 1<<32 - 2

// MinMemory is the lowest memory limit a container may have, in bytes.
// Starting a container costs about 4.5 MiB of memory in its own cgroup (the
// init is a Go program until it execs the bundle's process); with less the
// kernel refuses the limit and the start fails. Docker's minimum is the same.
const MinMemory = 6 << 20

// MinCPUShares and MaxCPUShares bound a CPU weight: the kernel's own bounds
// for cpu.shares (cgroup v1); cgroup v2's cpu.weight is derived from it.
const (
	MinCPUShares = 2
	MaxCPUShares = 262144
)

// Validate checks spec before anything of it reaches the kernel: a value
// the kernel or libcontainer would refuse (or worse, silently change) is an
// errclass.InvalidArgument naming the field.
func (s ProcessSpec) Validate() error {
	if len(s.Args) == 0 {
		return invalidf("args are required")
	}
	for i, a := range s.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalidf("args[%d] %q: contains a NUL byte", i, a)
		}
	}
	if err := ValidEnv(s.Env); err != nil {
		return err
	}
	if s.Cwd != "" && !path.IsAbs(s.Cwd) {
		return invalidf("cwd %q: must be an absolute path", s.Cwd)
	}
	if strings.IndexByte(s.Cwd, 0) >= 0 {
		return invalidf("cwd %q: contains a NUL byte", s.Cwd)
	}
	return s.User.Validate()
}

// ValidEnv checks environment entries: each KEY=value with a key that is
// not empty, and no NUL byte anywhere (the kernel takes C strings).
func ValidEnv(env []string) error {
	for i, e := range env {
		if strings.IndexByte(e, 0) >= 0 {
			return invalidf("env[%d] %q: contains a NUL byte", i, e)
		}
		key, _, ok := strings.Cut(e, "=")
		if !ok {
			return invalidf("env[%d] %q: want KEY=value", i, e)
		}
		if key == "" {
			return invalidf("env[%d] %q: the name before '=' is empty", i, e)
		}
	}
	return nil
}

// Validate checks that every id is one the kernel can take as it is: 0 to
// MaxUserID.
func (u User) Validate() error {
	if err := validUserID("user.uid", u.UID); err != nil {
		return err
	}
	if err := validUserID("user.gid", u.GID); err != nil {
		return err
	}
	for i, g := range u.AdditionalGids {
		if err := validUserID(fmt.Sprintf("user.additionalGids[%d]", i), g); err != nil {
			return err
		}
	}
	return nil
}

func validUserID(field string, id int) error {
	if id < 0 || int64(id) > MaxUserID {
		return invalidf("%s %d: must be between 0 and %d", field, id, MaxUserID)
	}
	return nil
}

// Validate checks limits before they are written to the cgroup: memory -1
// (none) or at least MinMemory, CPU shares within the kernel's bounds, pids
// -1 (none) or positive.
func (r Resources) Validate() error {
	if r.Memory != nil {
		if m := *r.Memory; m != -1 && m < MinMemory {
			return invalidf("memory %d: must be -1 (no limit) or at least %d bytes (%d MiB)", m, MinMemory, MinMemory>>20)
		}
	}
	if r.CPUShares != nil {
		if s := *r.CPUShares; s < MinCPUShares || s > MaxCPUShares {
			return invalidf("cpuShares %d: must be between %d and %d", s, MinCPUShares, MaxCPUShares)
		}
	}
	if r.Pids != nil {
		if p := *r.Pids; p == 0 || p < -1 {
			return invalidf("pids %d: must be positive or -1", p)
		}
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errclass.InvalidArgument)...)
}
