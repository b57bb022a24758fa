package api

import "time"

// Status is where a container is in its life.
type Status string

// The statuses a container can be in.
const (
	// Created: the container is being made and its init does not run yet.
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	// Stopped: its init has exited; the container stays listed until it is
	// deleted.
	Stopped Status = "stopped"
)

// Container is one container, as GET /containers/{id} answers and every
// list of containers holds.
type Container struct {
	ID         string `json:"id"`
	BundlePath string `json:"bundlePath"`
	// Image is the digest of the image the container was started from;
	// empty for one started from a bundle of the caller's.
	Image string         `json:"image,omitempty"`
	State ContainerState `json:"state"`
	// Processes are the live processes the daemon started, the init first.
	Processes []Process `json:"processes"`
	Created   time.Time `json:"created"`
	// Warm says the container was claimed from a warm pool, prepared ahead,
	// rather than started cold.
	Warm bool `json:"warm,omitempty"`
	// Join names the containers (or namespace files) whose namespaces it
	// joined at its start, as the start did (StartRequest.Join), also
	// after a daemon restart.
	Join *Join `json:"join,omitempty"`
}

// ContainerState is a container's status and, once stopped, how its init
// ended.
type ContainerState struct {
	Status Status `json:"status"`
	// ExitStatus is the init's exit code (128+signal when killed; -1 when
	// unknown because an earlier daemon started it). Set when stopped.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Error says why the daemon no longer manages the container, if so.
	Error string `json:"error,omitempty"`
	// OOMKilled says that the init ended killed (SIGKILL) after the
	// kernel's OOM killer acted in the container: it ran out of memory.
	// Set when stopped, as Kubernetes' reason OOMKilled.
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// Process is one live process of a container.
type Process struct {
	// Pid is the host pid; the signal endpoint takes it.
	Pid      int      `json:"pid"`
	Args     []string `json:"args"`
	User     User     `json:"user"`
	Terminal bool     `json:"terminal"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd,omitempty"`
	// Stdio says the daemon keeps its stdin, stdout and stderr for clients
	// to attach to (GET .../processes/{pid}/attach).
	Stdio bool `json:"stdio,omitempty"`
}

// User is a uid, a gid and additional gids inside a container.
type User struct {
	UID            int   `json:"uid"`
	GID            int   `json:"gid"`
	AdditionalGids []int `json:"additionalGids,omitempty"`
}

// StartRequest is the body of POST /containers/{id}: it creates the
// container and starts it, answering 201 with the Container once its init
// runs.
type StartRequest struct {
	// BundlePath is the absolute path of an OCI bundle (holding
	// config.json) on the daemon's machine. It may be left out with
	// Checkpoint: the checkpoint's own bundle is used.
	BundlePath string `json:"bundlePath,omitempty"`
	// Checkpoint, if set, restores the container from that checkpoint of
	// the same id instead of starting it fresh; "other/name" restores
	// another container's checkpoint under this id (a clone).
	Checkpoint string `json:"checkpoint,omitempty"`
	// Log bounds the container's log; what is left out is the daemon's
	// default (--log-max-size, --log-max-files).
	Log LogLimits `json:"log,omitzero"`
	// Stdin has the daemon keep the init's stdin for the client that
	// attaches (instead of /dev/null); its output still goes to its log.
	Stdin bool `json:"stdin,omitempty"`
	// Terminal gives the init a terminal, made in the container: its
	// stdin, stdout and stderr, kept for the client that attaches (its
	// output then goes there, not to the log). ConsoleSize is its first
	// size. Neither with Checkpoint, and neither survives a daemon
	// restart (the init's stdin ends; its terminal hangs up).
	Terminal    bool         `json:"terminal,omitempty"`
	ConsoleSize *ConsoleSize `json:"consoleSize,omitempty"`
	// Join puts the container in namespaces of other containers of the
	// daemon, or ones that namespace files hold, instead of new ones of
	// its own: a pod, whose sandbox (a container, or bind mounts) holds
	// the namespaces that its app containers join. Not with Checkpoint.
	Join *Join `json:"join,omitempty"`
	// ImageStart, with its Image set, starts the container from an image
	// in the daemon's store instead of a bundle (BundlePath and Checkpoint
	// must then be left out): its fields sit beside the others in the
	// request's JSON.
	ImageStart
}

// Join names, per namespace, the container whose namespace a start joins,
// by id; an empty field leaves the container its own namespace of that
// type. Each container named must be running or paused (404 if unknown, 409
// otherwise), and not the one starting (400). The pid namespace is not
// joined: the kernel would end every process of a joiner only with the
// sandbox's init, not with its own.
//
// A field that starts with "/" is instead the path of a namespace file of
// that type, such as /run/netns/NAME (made by `ip netns add`), another bind
// mount of a namespace, or /proc/PID/ns/net: a pod manager may hold a pod's
// namespaces itself, with no sandbox container. The path must be absolute
// and clean (400), exist (404), and be a namespace of that type (400
// otherwise, naming what it is); the namespace is its owner's to keep.
// Fields may mix paths and ids.
//
// A container that joins a UTS namespace has that namespace's host name:
// its start from an image names none (400 with "hostname"), and a bundle
// whose config.json sets hostname or domainname is refused (400), as are a
// bundle's linux.sysctl entries of a namespace it joins; either would
// change the other container's namespace. So is a bundle with a user
// namespace of its own, which has no privilege over the namespaces it would
// join. Such a start is cold: it claims no warm pool's container.
//
// The namespaces are the kernel's, kept while any process (or bind mount)
// holds them: a joiner keeps running, in the same namespaces, when the
// container it joined stops or is deleted; only a start that joins it then
// is refused.
type Join struct {
	Network string `json:"network,omitempty"`
	IPC     string `json:"ipc,omitempty"`
	UTS     string `json:"uts,omitempty"`
}

// LogLimits bound a container's log of its init's stdout and stderr.
type LogLimits struct {
	// MaxSize is the size in bytes at which the current file rotates.
	MaxSize int64 `json:"maxSize,omitempty"`
	// MaxFiles is how many files are kept, the current one included.
	MaxFiles int `json:"maxFiles,omitempty"`
}

// ExecRequest is the body of PUT /containers/{id}/processes: it starts a
// process in the running container, answering 201 with the Process.
type ExecRequest struct {
	// Args is the command and its arguments; required.
	Args []string `json:"args"`
	// Env is the environment, KEY=value; empty means the init's.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory inside the container; empty means "/".
	Cwd string `json:"cwd,omitempty"`
	// User is the uid and gids inside the container; nil means root.
	User *User `json:"user,omitempty"`
	// Attach has the daemon keep the process's stdout and stderr (and
	// stdin, with Stdin) for a client to attach to (the attach endpoint),
	// instead of sending them to /dev/null.
	Attach bool `json:"attach,omitempty"`
	// Stdin keeps the process's stdin open for the attached client.
	Stdin bool `json:"stdin,omitempty"`
	// Terminal gives the process a terminal (a pty made in the container):
	// its stdin, stdout and stderr, kept for a client as with Attach.
	Terminal bool `json:"terminal,omitempty"`
	// ConsoleSize is the terminal's first size.
	ConsoleSize *ConsoleSize `json:"consoleSize,omitempty"`
}

// ConsoleSize is a terminal's size in columns and rows.
type ConsoleSize struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// PatchRequest is the body of PATCH /containers/{id}. Each field set is a
// change; they apply in the order resources, signal, status, and the answer
// is the Container after them.
type PatchRequest struct {
	// Status "paused" freezes every process of the container, "running"
	// thaws them. Pausing a paused container succeeds; a stopped one is 409.
	Status *Status `json:"status,omitempty"`
	// Signal is sent to the container's init.
	Signal *Signal `json:"signal,omitempty"`
	// Resources change the limits of the running container.
	Resources *Resources `json:"resources,omitempty"`
}

// Resources are the limits that can change while a container runs; a nil
// field is left as it is.
type Resources struct {
	// Memory is the memory limit in bytes (-1 for none).
	Memory *int64 `json:"memory,omitempty"`
	// CPUShares is the relative CPU weight (2 to 262144).
	CPUShares *uint64 `json:"cpuShares,omitempty"`
	// Pids is the maximum number of processes (-1 for none).
	Pids *int64 `json:"pids,omitempty"`
}

// SignalRequest is the body of POST /containers/{id}/process/{pid}: it
// signals that process of the container (204).
type SignalRequest struct {
	// Signal is required.
	Signal *Signal `json:"signal"`
}

// Stats are a container's cgroup figures at one moment: the answer of GET
// /containers/{id}/stats.
type Stats struct {
	// CPUUsageNanos is the total CPU time consumed, in nanoseconds.
	CPUUsageNanos uint64 `json:"cpuUsageNanos"`
	// MemoryUsage is the current memory usage in bytes.
	MemoryUsage uint64 `json:"memoryUsage"`
	// MemoryLimit is the memory limit in bytes (the host's RAM if unlimited).
	MemoryLimit uint64 `json:"memoryLimit"`
	// MemoryMaxUsage is the peak memory usage in bytes.
	MemoryMaxUsage uint64 `json:"memoryMaxUsage"`
	// OOMKills is how many times the OOM killer acted in the container,
	// when the kernel reports it (0 otherwise).
	OOMKills uint64 `json:"oomKills"`
	// Pids is the number of processes in the container.
	Pids uint64 `json:"pids"`
	// PidsLimit is the limit on processes; 0 means none.
	PidsLimit uint64 `json:"pidsLimit"`
	// IOReadBytes and IOWriteBytes are block I/O totals.
	IOReadBytes  uint64 `json:"ioReadBytes"`
	IOWriteBytes uint64 `json:"ioWriteBytes"`
}

// ContainerList is the answer of GET /containers, sorted by id.
type ContainerList struct {
	Containers []*Container `json:"containers"`
}

// State is the answer of GET /state: every container, sorted by id, and
// the machine's figures.
type State struct {
	// Containers are pointers so that the daemon answers from its snapshot
	// as it is, without a copy of thousands of containers per request.
	Containers []*Container `json:"containers"`
	Machine    Machine      `json:"machine"`
}

// Machine describes the daemon's machine.
type Machine struct {
	// CPUs is the number of CPUs the daemon may use.
	CPUs int `json:"cpus"`
	// Memory is the total RAM in bytes.
	Memory uint64 `json:"memory"`
}
