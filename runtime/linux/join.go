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

// joinedInit is the init of a container whose namespaces a start joins,
// as checked before the start: its start time tells it from a later
// process that the kernel gave the same pid.
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
	if opts.Joins(runtime.UTSNamespace) && (b.Spec.Hostname != "" || b.Spec.Domainname != "") {
		return fmt.Errorf("%s: sets hostname or domainname, and the start joins another container's UTS namespace, whose names are that container's: leave them out: %w",
			file, errclass.InvalidArgument)
	}
	if b.Spec.Linux != nil {
		for _, ns := range b.Spec.Linux.Namespaces {
			if ns.Path != "" && opts.Joins(runtime.Namespace(ns.Type)) {
				// Two answers to which namespace: the bundle's and the
				// start's. Neither silently wins.
				return fmt.Errorf("%s: names a %s namespace of its own (%s), and the start joins another container's: leave one out: %w",
					file, ns.Type, ns.Path, errclass.InvalidArgument)
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
			if ns, shared := sysctlNamespace(k); shared && opts.Joins(ns) {
				return fmt.Errorf("%s: linux.sysctl %q belongs to the %s namespace the start joins, another container's: leave it out: %w",
					file, k, ns, errclass.InvalidArgument)
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
// books; this is the runtime's word that it is still right.
func (r *Runtime) checkJoined(joins []runtime.Join) ([]joinedInit, error) {
	inits := make([]joinedInit, 0, len(joins))
	for _, j := range joins {
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

// alive checks that the init still runs: the process of its pid started
// when it did, and has not exited (a zombie has no namespaces left).
func (ji joinedInit) alive() error {
	j := ji.join
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
// entered.
func joinConfig(cfg *configs.Config, inits []joinedInit) {
	cfg.Namespaces = slices.Clone(cfg.Namespaces)
	for _, ji := range inits {
		t := nsTypes[ji.join.Namespace]
		p := fmt.Sprintf("/proc/%d/ns/%s", ji.join.Pid, configs.NsName(t))
		i := slices.IndexFunc(cfg.Namespaces, func(n configs.Namespace) bool { return n.Type == t })
		if i < 0 {
			cfg.Namespaces = append(cfg.Namespaces, configs.Namespace{Type: t, Path: p})
		} else {
			cfg.Namespaces[i].Path = p
		}
		if t == configs.NEWNET {
			// The joined namespace is set up already: its loopback is
			// up and its routes are its owner's.
			cfg.Networks, cfg.Routes = nil, nil
		}
	}
}
