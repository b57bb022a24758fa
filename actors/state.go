package actors

import (
	"slices"
	"strings"
	"time"

	"github.com/troupe-run/troupe/runtime"
)

// ContainerInfo is the view of one container that the API shows. A value
// handed out is never changed afterwards: a change makes a new one.
type ContainerInfo struct {
	ID         string         `json:"id"`
	BundlePath string         `json:"bundlePath"`
	State      ContainerState `json:"state"`
	// Processes are the live processes the daemon started, the init first.
	Processes []ProcessInfo `json:"processes"`
	Created   time.Time     `json:"created"`
	// Warm says the container was claimed from a warm pool, prepared ahead,
	// rather than started cold.
	Warm bool `json:"warm,omitempty"`
	// LogPath is the file holding the init's stdout and stderr; the daemon
	// serves it, it is not part of the API's JSON.
	LogPath string `json:"-"`
}

// ContainerState is a container's status and, once stopped, how its init
// ended.
type ContainerState struct {
	// Status is running, paused or stopped (created while it starts).
	Status runtime.Status `json:"status"`
	// ExitStatus is the init's exit code (128+signal when killed; -1 when
	// unknown because an earlier daemon started it). Set when stopped.
	ExitStatus *int `json:"exitStatus,omitempty"`
	// Error says why the daemon no longer manages the container, if so.
	Error string `json:"error,omitempty"`
}

// ProcessInfo is one live process of a container.
type ProcessInfo struct {
	// Pid is the host pid; the signal endpoint takes it.
	Pid      int          `json:"pid"`
	Args     []string     `json:"args"`
	User     runtime.User `json:"user"`
	Terminal bool         `json:"terminal"`
	Env      []string     `json:"env"`
	Cwd      string       `json:"cwd,omitempty"`
}

func processInfo(p runtime.Process) ProcessInfo {
	s := p.Spec()
	return ProcessInfo{Pid: p.Pid(), Args: s.Args, User: s.User, Env: s.Env, Cwd: s.Cwd}
}

// State is an immutable snapshot of every container the supervisor knows,
// sorted by id. The supervisor replaces it on each change, so readers never
// wait for the actors, however many starts are in flight.
type State struct {
	// Containers are sorted by ID.
	Containers []*ContainerInfo
}

// Get returns the container id, if the snapshot has it.
func (s *State) Get(id string) (*ContainerInfo, bool) {
	i, ok := slices.BinarySearchFunc(s.Containers, id, byID)
	if !ok {
		return nil, false
	}
	return s.Containers[i], true
}

// with returns a new snapshot where c replaces (or adds) its id's entry.
// Only the slice of pointers is copied: O(n) pointer moves, cheap even for
// ten thousand containers.
func (s *State) with(c *ContainerInfo) *State {
	i, found := slices.BinarySearchFunc(s.Containers, c.ID, byID)
	next := make([]*ContainerInfo, 0, len(s.Containers)+1)
	next = append(next, s.Containers[:i]...)
	next = append(next, c)
	if found {
		i++
	}
	next = append(next, s.Containers[i:]...)
	return &State{Containers: next}
}

// without returns a new snapshot without id.
func (s *State) without(id string) *State {
	i, found := slices.BinarySearchFunc(s.Containers, id, byID)
	if !found {
		return s
	}
	next := make([]*ContainerInfo, 0, len(s.Containers)-1)
	next = append(next, s.Containers[:i]...)
	next = append(next, s.Containers[i+1:]...)
	return &State{Containers: next}
}

func byID(c *ContainerInfo, id string) int { return strings.Compare(c.ID, id) }
