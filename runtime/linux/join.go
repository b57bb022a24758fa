package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/system"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
)

// nsTypes maps the namespaces a start may join to libcontainer's.
var nsTypes = map[runtime.Namespace]configs.NamespaceType{
	runtime.NetworkNamespace: configs.NEWNET,
	runtime.IPCNamespace:     configs.NEWIPC,
	runtime.UTSNamespace:     configs.NEWUTS,
}

// nsFlags are the clone flags of the namespaces a start may join: the
// type the kernel reports of a namespace file (NS_GET_NSTYPE).
var nsFlags = map[runtime.Namespace]int{
	runtime.NetworkNamespace: unix.CLONE_NEWNET,
	runtime.IPCNamespace:     unix.CLONE_NEWIPC,
	runtime.UTSNamespace:     unix.CLONE_NEWUTS,
}

// nsFlagNames name every type of namespace by its clone flag, as
// /proc/PID/ns does: what a namespace file of the wrong type is instead.
var nsFlagNames = map[int]string{
	unix.CLONE_NEWNET:    "net",
	unix.CLONE_NEWIPC:    "ipc",
	unix.CLONE_NEWUTS:    "uts",
	unix.CLONE_NEWNS:     "mnt",
	unix.CLONE_NEWPID:    "pid",
	unix.CLONE_NEWUSER:   "user",
	unix.CLONE_NEWCGROUP: "cgroup",
	unix.CLONE_NEWTIME:   "time",
}

// joinedInit is the init of a container whose namespaces a start joins,
// as checked before the start: its start time tells it from a later
// process that the kernel gave the same pid. A join of a namespace file
// (join.Path) has no init: only the join.
type joinedInit struct {
	join      runtime.Join
	startTime uint64
}

// checkJoinBundle refuses what the bundle would do to namespaces it shares
// rather than owns: libcontainer would carry it out in the other container's
// namespace, renaming the host of a whole pod or changing its network.
func checkJoinBundle(id string, b *bundle.Bundle, opts runtime.StartOptions) error {
	if len(opts.Join) == 0 {
		return nil
	}
	for _, j := range opts.Join {
		if j.Container == id {
			return fmt.Errorf("join %s: a container cannot join its own namespaces: %w", j.Namespace, errclass.InvalidArgument)
		}
	}
	file := filepath.Join(b.Path, bundle.ConfigFile)
	if j, ok := opts.JoinOf(runtime.UTSNamespace); ok && (b.Spec.Hostname != "" || b.Spec.Domainname != "") {
		return fmt.Errorf("%s: sets hostname or domainname, and the start joins the UTS namespace %s, whose names are not this container's: leave them out: %w",
			file, j.Where(), errclass.InvalidArgument)
	}
	if b.Spec.Linux != nil {
		for _, ns := range b.Spec.Linux.Namespaces {
			if j, ok := opts.JoinOf(runtime.Namespace(ns.Type)); ok && ns.Path != "" {
				// Two answers to which namespace: the bundle's and the
				// start's. Neither silently wins.
				return fmt.Errorf("%s: names a %s namespace of its own (%s), and the start joins the one %s: leave one out: %w",
					file, ns.Type, ns.Path, j.Where(), errclass.InvalidArgument)
			}
			if ns.Type == specs.UserNamespace {
				// Its init would have no privilege over namespaces that
				// another user namespace owns: mounting /dev/mqueue or
				// /sys there fails with EPERM deep in its setup.
				return fmt.Errorf("%s: has a user namespace of its own, which has no privilege over the namespaces it would join: leave it out to join: %w",
					file, errclass.InvalidArgument)
			}
		}
		for k := range b.Spec.Linux.Sysctl {
			ns, shared := sysctlNamespace(k)
			if j, ok := opts.JoinOf(ns); shared && ok {
				return fmt.Errorf("%s: linux.sysctl %q belongs to the %s namespace the start joins, the one %s, not this container's: leave it out: %w",
					file, k, ns, j.Where(), errclass.InvalidArgument)
			}
		}
	}
	return nil
}

// sysctlNamespace is the namespace a sysctl is set in, if one a start may
// join (the kernel's list of namespaced sysctls, as runc's validator has it).
func sysctlNamespace(key string) (runtime.Namespace, bool) {
	switch {
	case strings.HasPrefix(key, "net."):
		return runtime.NetworkNamespace, true
	case strings.HasPrefix(key, "fs.mqueue."), key == "kernel.msgmax", key == "kernel.msgmnb", key == "kernel.msgmni",
		key == "kernel.sem", key == "kernel.shmall", key == "kernel.shmmax", key == "kernel.shmmni", key == "kernel.shm_rmid_forced":
		return runtime.IPCNamespace, true
	case key == "kernel.hostname", key == "kernel.domainname":
		return runtime.UTSNamespace, true
	}
	return "", false
}

// checkJoined checks that each joined container of the runtime runs with
// the init the caller named, and returns what tells those inits from
// later processes of the same pids. The caller's pid comes from its own
// books; this is the runtime's word that it is still right. A joined
// namespace file is checked to be a namespace of its type.
func (r *Runtime) checkJoined(joins []runtime.Join) ([]joinedInit, error) {
	inits := make([]joinedInit, 0, len(joins))
	for _, j := range joins {
		if j.Path != "" {
			if err := checkNamespaceFile(j); err != nil {
				return nil, err
			}
			inits = append(inits, joinedInit{join: j})
			continue
		}
		lc, err := libcontainer.Load(r.stateRoot, j.Container)
		if err != nil {
			if errors.Is(err, libcontainer.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("join %s of container %q: %w", j.Namespace, j.Container, errclass.NotFound)
			}
			return nil, classify(err, "join %s of container %q", j.Namespace, j.Container)
		}
		st, err := lc.State()
		if err != nil {
			return nil, classify(err, "join %s of container %q", j.Namespace, j.Container)
		}
		if st.InitProcessPid != j.Pid {
			return nil, fmt.Errorf("join %s of container %q: its init is pid %d, not %d: %w",
				j.Namespace, j.Container, st.InitProcessPid, j.Pid, errclass.FailedPrecondition)
		}
		ji := joinedInit{join: j, startTime: st.InitProcessStartTime}
		if err := ji.alive(); err != nil {
			return nil, err
		}
		inits = append(inits, ji)
	}
	return inits, nil
}

// checkNamespaceFile checks that j.Path is a namespace file of j's type:
// a file of nsfs (a /proc/PID/ns link, or a bind mount of one) whose type,
// by the kernel's word, is the one named. setns checks the type again as
// the init enters it, but its error names neither the file nor what it is.
//
// The file is opened with O_PATH first, which opens nothing: a device or a
// FIFO named by mistake is neither set off (a watchdog) nor waited on. Only
// a namespace file is then opened for reading, for the ioctl, through the
// descriptor, so that it is the file checked.
func checkNamespaceFile(j runtime.Join) error {
	fd, err := unix.Open(j.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return namespaceFileError(j, "open", err)
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return namespaceFileError(j, "statfs", err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("join %s %s: it is %s, not a namespace file (a /proc/PID/ns file, or a bind mount of one): %w",
			j.Namespace, j.Where(), fileKind(fd), errclass.InvalidArgument)
	}
	nsfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return namespaceFileError(j, "open", err)
	}
	defer unix.Close(nsfd)
	t, err := unix.IoctlRetInt(nsfd, unix.NS_GET_NSTYPE)
	if errors.Is(err, unix.ENOTTY) {
		return fmt.Errorf("join %s %s: the kernel does not tell a namespace's type (NS_GET_NSTYPE, Linux 4.11): %w",
			j.Namespace, j.Where(), errclass.Unavailable)
	}
	if err != nil {
		return namespaceFileError(j, "ioctl NS_GET_NSTYPE", err)
	}
	if want := nsFlags[j.Namespace]; t != want {
		name, ok := nsFlagNames[t]
		if !ok {
			name = fmt.Sprintf("%#x", t)
		}
		return fmt.Errorf("join %s %s: it is a namespace of type %s, not %s: %w",
			j.Namespace, j.Where(), name, nsFlagNames[want], errclass.InvalidArgument)
	}
	return nil
}

// namespaceFileError is the error of a namespace file that op could not
// read: not found if the path leads nowhere.
func namespaceFileError(j runtime.Join, op string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("join %s %s: no such file: %w", j.Namespace, j.Where(), errclass.NotFound)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENAMETOOLONG):
		return fmt.Errorf("join %s %s: %s: %v: %w", j.Namespace, j.Where(), op, err, errclass.InvalidArgument)
	}
	return fmt.Errorf("join %s %s: %s: %w", j.Namespace, j.Where(), op, err)
}

// fileKind says what the file open at fd is, for a message: "a regular
// file", "a directory".
func fileKind(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "a file that cannot be read"
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "not a regular file"
}

// alive checks that the init still runs: the process of its pid started
// when it did, and has not exited (a zombie has no namespaces left). A
// namespace file has no init: it is its owner's to keep, and setns checked
// its type as the init entered it.
func (ji joinedInit) alive() error {
	j := ji.join
	if j.Path != "" {
		return nil
	}
	stat, err := system.Stat(j.Pid)
	if err != nil || stat.StartTime != ji.startTime || stat.State == system.Zombie || stat.State == system.Dead {
		return fmt.Errorf("join %s of container %q: it is not running (its init, pid %d, has exited): %w",
			j.Namespace, j.Container, j.Pid, errclass.FailedPrecondition)
	}
	return nil
}

// joinConfig makes cfg (a copy of the bundle's shared configuration: its
// slices are the bundle's) join the inits' namespaces by their /proc
// paths. The path names the pid, which alive checks again after the start:
// the same process before and after is the one whose namespace was
// entered. A namespace file is joined by its own path.
func joinConfig(cfg *configs.Config, inits []joinedInit) {
	cfg.Namespaces = slices.Clone(cfg.Namespaces)
	for _, ji := range inits {
		t := nsTypes[ji.join.Namespace]
		p := ji.join.Path
		if p == "" {
			p = fmt.Sprintf("/proc/%d/ns/%s", ji.join.Pid, configs.NsName(t))
		}
		i := slices.IndexFunc(cfg.Namespaces, func(n configs.Namespace) bool { return n.Type == t })
		if i < 0 {
			cfg.Namespaces = append(cfg.Namespaces, configs.Namespace{Type: t, Path: p})
		} else {
			cfg.Namespaces[i].Path = p
		}
		if t == configs.NEWNET {
			// The joined namespace is set up already: its loopback and
			// its routes are its owner's.
			cfg.Networks, cfg.Routes = nil, nil
		}
	}
}
