package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// Runtime starts containers from OCI bundles and finds the ones that already
// exist in its state directory.
type Runtime interface {
	// Start creates the container id from opts and starts its init. It returns
	// once the init runs; on any error nothing of the container is left behind.
	Start(ctx context.Context, id string, opts StartOptions) (Container, error)
	// Check reads and validates what a start of id with opts would use (the
	// bundle) and makes nothing: a caller that bounds the starts in flight
	// calls it before taking a slot, so that a bad or slow bundle costs none.
	// Start checks again.
	Check(ctx context.Context, id string, opts StartOptions) error
	// Load returns a container that already exists in the state directory,
	// such as one started by an earlier daemon; its init is not a child of
	// this process, so its exit code may be unknown.
	Load(ctx context.Context, id string) (Container, error)
	// List returns the ids of the containers in the state directory.
	List(ctx context.Context) ([]string, error)
}

// StartOptions say what to start.
type StartOptions struct {
	// BundlePath is the absolute path of an OCI bundle holding config.json.
	BundlePath string
	// Restore, when set, brings the container back from a checkpoint (its
	// memory, open files and process tree) instead of starting its init.
	Restore *RestoreOptions
	// Log bounds the container's log; zero fields mean the runtime's
	// defaults.
	Log containerlog.Limits
	// Stdin, when set, is the init's stdin instead of /dev/null.
	Stdin *os.File `json:"-"`
	// Terminal gives the init a terminal made in the container, whose
	// master is sent over ConsoleSocket as ProcessSpec's is (its stdout
	// and stderr are then the terminal's, not the log's). A bundle whose
	// process.terminal is true needs one. Not with Restore.
	Terminal      bool     `json:"terminal,omitempty"`
	ConsoleSocket *os.File `json:"-"`
	ConsoleWidth  uint16   `json:"consoleWidth,omitempty"`
	ConsoleHeight uint16   `json:"consoleHeight,omitempty"`
	// Join puts the container in namespaces of other running containers of
	// the same runtime, or ones held by namespace files, instead of new
	// ones (a pod: the apps join the sandbox's). Not with Restore.
	Join []Join `json:"join,omitempty"`
}

// Namespace is a kind of namespace a container may join.
type Namespace string

// The namespaces a start may join. The pid namespace is not among them: a
// joiner's init would not be its pid 1, and troupe counts on a container's
// processes ending with its init.
const (
	NetworkNamespace Namespace = "network"
	IPCNamespace     Namespace = "ipc"
	UTSNamespace     Namespace = "uts"
)

// Join is a namespace that a start joins: another container's (Container
// and Pid), or the one a namespace file holds (Path).
type Join struct {
	Namespace Namespace `json:"namespace"`
	// Container is the id of the container whose namespace it is.
	Container string `json:"container,omitempty"`
	// Pid is that container's init, as the caller knows it: the runtime
	// joins only if it still is that container's init, so that a pid the
	// kernel reused after the init's exit is never joined.
	Pid int `json:"pid,omitempty"`
	// Path, instead of Container and Pid, is the absolute path of a
	// namespace file of that type: a /proc/PID/ns link, or a bind mount
	// of one (as `ip netns add` makes), which keeps the namespace with no
	// process in it. The namespace is its owner's, not the runtime's: the
	// runtime checks right before the start that the file is a namespace
	// of that type, and nothing of it after.
	Path string `json:"path,omitempty"`
}

// Where says whose namespace j is, for messages: `of container "sandbox"`,
// or `at "/run/netns/pod1"`.
func (j Join) Where() string {
	if j.Path != "" {
		return fmt.Sprintf("at %q", j.Path)
	}
	return fmt.Sprintf("of container %q", j.Container)
}

// IsNamespacePath reports whether v, a value of a start's join as the API
// takes it (api.Join), is the path of a namespace file rather than the id
// of a container: whether it starts with "/", which no id does (ValidID).
func IsNamespacePath(v string) bool { return strings.HasPrefix(v, "/") }

// ValidNamespacePath checks what can be checked of a namespace file's path
// without reading anything: it is absolute and clean, so that the path a
// container's record shows is the very one that was checked and joined.
// Whether it is a namespace file, and of which type, is the runtime's to
// check.
func ValidNamespacePath(p string) error {
	switch {
	case !filepath.IsAbs(p):
		return fmt.Errorf("namespace file %q: not an absolute path: %w", p, errclass.InvalidArgument)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("namespace file %q: a path has no NUL byte: %w", p, errclass.InvalidArgument)
	case filepath.Clean(p) != p:
		return fmt.Errorf("namespace file %q: not a clean path (%q is): %w", p, filepath.Clean(p), errclass.InvalidArgument)
	}
	return nil
}

// Joins reports whether o joins a namespace of type ns.
func (o StartOptions) Joins(ns Namespace) bool {
	_, ok := o.JoinOf(ns)
	return ok
}

// JoinOf returns o's join of the namespace of type ns, if it has one.
func (o StartOptions) JoinOf(ns Namespace) (Join, bool) {
	for _, j := range o.Join {
		if j.Namespace == ns {
			return j, true
		}
	}
	return Join{}, false
}

// Validate checks what can be checked of o without reading anything: the
// log limits and the joins. The bundle is the runtime's to check (Check).
func (o StartOptions) Validate() error {
	if err := o.Log.Validate(); err != nil {
		return fmt.Errorf("%v: %w", err, errclass.InvalidArgument)
	}
	if o.Restore != nil && (o.Stdin != nil || o.Terminal) {
		return fmt.Errorf("a restore brings back the stdio it had: it takes no stdin nor terminal: %w", errclass.InvalidArgument)
	}
	if o.Restore != nil && len(o.Join) > 0 {
		return fmt.Errorf("a restore brings back the namespaces it had: it joins none: %w", errclass.InvalidArgument)
	}
	seen := make(map[Namespace]bool, len(o.Join))
	for _, j := range o.Join {
		switch j.Namespace {
		case NetworkNamespace, IPCNamespace, UTSNamespace:
		default:
			return fmt.Errorf("join: namespace %q: want %q, %q or %q: %w", j.Namespace,
				NetworkNamespace, IPCNamespace, UTSNamespace, errclass.InvalidArgument)
		}
		if seen[j.Namespace] {
			return fmt.Errorf("join: namespace %q named twice: %w", j.Namespace, errclass.InvalidArgument)
		}
		seen[j.Namespace] = true
		if j.Path != "" {
			if j.Container != "" || j.Pid != 0 {
				return fmt.Errorf("join %s: names both the file %q and container %q: want one: %w",
					j.Namespace, j.Path, j.Container, errclass.InvalidArgument)
			}
			if err := ValidNamespacePath(j.Path); err != nil {
				return fmt.Errorf("join %s: %w", j.Namespace, err)
			}
			continue
		}
		if err := ValidID("container id", j.Container); err != nil {
			return fmt.Errorf("join %s: %w", j.Namespace, err)
		}
		if j.Pid <= 0 {
			return fmt.Errorf("join %s of container %q: no init pid: %w", j.Namespace, j.Container, errclass.InvalidArgument)
		}
	}
	return nil
}

// RestoreOptions say which checkpoint to restore and how it was taken.
type RestoreOptions struct {
	// ImagesDir holds the checkpoint's CRIU images.
	ImagesDir string
	// TCP, UnixSockets and Shell must match the checkpoint's options.
	TCP, UnixSockets, Shell bool
}

// CheckpointOptions say how to checkpoint a container.
type CheckpointOptions struct {
	// Exit stops the container after the dump; else it keeps running.
	Exit bool
	// TCP dumps established TCP connections.
	TCP bool
	// UnixSockets allows connections to unix sockets outside the container.
	UnixSockets bool
	// Shell allows a process attached to a terminal or session.
	Shell bool
}

// Container is one container; it handles its own actions. Methods are safe
// for concurrent use.
type Container interface {
	// ID returns the container's id.
	ID() string
	// BundlePath returns the bundle the container was started from.
	BundlePath() string
	// Init returns the container's first process.
	Init() Process
	// Joined returns the namespaces of other containers that its start
	// joined (StartOptions.Join), also for a container loaded later.
	Joined() []Join
	// Exec starts an additional process inside the running container.
	Exec(ctx context.Context, spec ProcessSpec) (Process, error)
	// Signal sends sig to the process pid (a host pid) of this container.
	Signal(pid int, sig syscall.Signal) error
	// Processes returns the host pids of the live processes in the
	// container, the init first.
	Processes() ([]int, error)
	// Status returns the container's current status.
	Status() (Status, error)
	// Pause freezes every process of the container.
	Pause() error
	// Resume thaws a paused container.
	Resume() error
	// Stats returns the container's cgroup figures.
	Stats() (*Stats, error)
	// Update changes the resource limits of the running container.
	Update(r Resources) error
	// OnOOM has fn called once for each OOM kill in the container from now
	// on, until its cgroup goes away. Any number of callbacks may be
	// registered; each is called for every kill, in the order they were
	// registered, and none is ever removed. When the OOM killer kills a
	// process the runtime started (the init or an exec'd process), fn has
	// returned before that process's Done is closed and before its OnExit
	// callbacks are called: a caller learns why the init died before it
	// learns that it did.
	//
	// Like OnExit's, fn runs on a goroutine of the runtime (package linux's
	// reactor, which serves every container, or the one that reaps the
	// victim) and possibly under its locks: it must only hand the event on,
	// such as by sending an actor message or on a buffered channel, and
	// must not block nor call back into the runtime. OnOOM itself never
	// calls fn. It is what lets a caller watch many containers without a
	// goroutine per container.
	//
	// It fails with errclass.NotFound once the container's cgroup is gone (after
	// Delete). On a cgroup v2 host a stopped container's cgroup stays until
	// Delete but no OOM kill can happen in it any more: registration
	// succeeds and fn is never called.
	OnOOM(fn func()) error
	// LogPath returns the file that receives the init's stdout and stderr.
	LogPath() string
	// Checkpoint dumps the container's processes (CRIU) into dir, which
	// must exist and be empty.
	Checkpoint(ctx context.Context, dir string, o CheckpointOptions) error
	// Delete removes a stopped container and every trace of it: cgroups,
	// state and log files. With force a running container is killed first.
	Delete(ctx context.Context, force bool) error
}

// Process is one process of a container.
type Process interface {
	// Pid returns the process's host pid.
	Pid() int
	// Done is closed when the process has exited and been reaped.
	Done() <-chan struct{}
	// Wait blocks until the process exits or ctx ends.
	Wait(ctx context.Context) (ExitStatus, error)
	// OnExit has fn called exactly once with the process's exit status,
	// once the process has exited and been reaped and, for an init, its
	// output is in its log: when Done is closed and Wait returns that same
	// status. If the process has already exited, fn is called promptly all
	// the same. Each fn registered is called once; fn is never called on
	// the goroutine that calls OnExit.
	//
	// fn may run on a goroutine that serves every container of the runtime
	// (package linux's reactor) and possibly under its locks: it must only
	// hand the status on, such as by sending an actor message or on a
	// buffered channel, and must not block nor call back into the runtime.
	// It is what lets a caller watch many processes without a goroutine
	// blocked in Wait for each.
	OnExit(fn func(ExitStatus))
	// Spec returns what the process runs (its stdio files left out).
	Spec() ProcessSpec
}

// ProcessSpec describes a process to exec into a container. Its JSON is
// the runtime's record on disk of a container's init, not the API's (that
// is package api).
type ProcessSpec struct {
	// Args is the command and its arguments; required.
	Args []string `json:"args"`
	// Env is the environment, KEY=value; when empty the init's is used.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory inside the container; default "/".
	Cwd string `json:"cwd,omitempty"`
	// User is the uid and gid inside the container, with additional gids.
	User User `json:"user"`
	// Stdin, Stdout and Stderr are handed to the process as they are; nil
	// means /dev/null. Files, not io.Writers: a writer would make a pipe that
	// the daemon must drain and that keeps Wait from returning.
	Stdin, Stdout, Stderr *os.File `json:"-"`
	// ConsoleSocket, when set, asks for a terminal: the process gets a new
	// pty as its stdin, stdout and stderr (which are then ignored), and the
	// pty's master is sent over this unix socket (SCM_RIGHTS) for its
	// caller to receive. ConsoleWidth and ConsoleHeight are its first size.
	ConsoleSocket *os.File `json:"-"`
	ConsoleWidth  uint16   `json:"consoleWidth,omitempty"`
	ConsoleHeight uint16   `json:"consoleHeight,omitempty"`
}

// User is a uid, a gid and additional gids inside a container.
type User struct {
	UID            int   `json:"uid"`
	GID            int   `json:"gid"`
	AdditionalGids []int `json:"additionalGids,omitempty"`
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+signal when a signal killed it, the
	// convention of shells and of docker. -1 means unknown: the process was
	// not our child (a re-adopted container), so its status was lost.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// At is when the exit was observed.
	At time.Time
}

// String returns "exit code N" or "killed by SIG".
func (e ExitStatus) String() string {
	switch {
	case e.Signal != 0:
		return fmt.Sprintf("killed by %v", e.Signal)
	case e.Code < 0:
		return "exit status unknown"
	default:
		return fmt.Sprintf("exit code %d", e.Code)
	}
}

// Status is a container's lifecycle state.
type Status string

// The statuses a container can be in.
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
)

// Resources are the limits that can change while a container runs; a nil
// field is left as it is.
type Resources struct {
	// Memory is the memory limit in bytes (-1 for none).
	Memory *int64
	// CPUShares is the relative CPU weight.
	CPUShares *uint64
	// Pids is the maximum number of processes (-1 for none).
	Pids *int64
}

// Stats are a container's cgroup figures at one moment.
type Stats struct {
	// CPUUsageNanos is the total CPU time consumed, in nanoseconds.
	CPUUsageNanos uint64
	// MemoryUsage is the current memory usage in bytes.
	MemoryUsage uint64
	// MemoryLimit is the memory limit in bytes (the host's RAM if unlimited).
	MemoryLimit uint64
	// MemoryMaxUsage is the peak memory usage in bytes.
	MemoryMaxUsage uint64
	// OOMKills is how many times the OOM killer acted in the container,
	// when the kernel reports it (0 otherwise).
	OOMKills uint64
	// Pids is the number of processes in the container.
	Pids uint64
	// PidsLimit is the limit on processes; 0 means none.
	PidsLimit uint64
	// IOReadBytes and IOWriteBytes are block I/O totals.
	IOReadBytes  uint64
	IOWriteBytes uint64
}

// maxIDLength bounds ids and names.
const maxIDLength = 128

// ValidID checks that id may name a container or checkpoint: 1 to 128 of
// [A-Za-z0-9_.-], starting with a letter or digit. That excludes "/"
// (protoactor's name separator, and a path separator) and a leading dot or
// dash, so an id can never name a parent directory or pass for a flag. What
// names it ("container id", "checkpoint name") goes into the error.
//
// It is written out rather than a regexp: package initialization runs in
// every container's init too, and compiling the pattern cost 0.37 ms there.
func ValidID(what, id string) error {
	if !validID(id) {
		return fmt.Errorf("invalid %s %q: must be 1 to %d of [A-Za-z0-9_.-], starting with a letter or digit: %w",
			what, id, maxIDLength, errclass.InvalidArgument)
	}
	return nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Reconciled says what a runtime's Reconcile (package linux's, for a daemon
// starting after one that died) found and removed.
type Reconciled struct {
	// Destroyed are the containers that were half-made or never started
	// (a start the previous daemon did not finish): each is gone with all it
	// left, and its id is free again.
	Destroyed []string
	// Cgroups are the cgroup directories (below the cgroup parent) that no
	// container owned, removed after killing what ran in them.
	Cgroups []string
	// Logs are the log files that no container owned.
	Logs []string
}
