package actors

import (
	"slices"
	"strings"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
)

// processInfo is p as the API shows it.
func processInfo(p runtime.Process) api.Process {
	s := p.Spec()
	u := api.User{UID: s.User.UID, GID: s.User.GID, AdditionalGids: s.User.AdditionalGids}
	return api.Process{Pid: p.Pid(), Args: s.Args, User: u, Env: s.Env, Cwd: s.Cwd}
}

// checkpointInfo is a stored checkpoint as the API shows it.
func checkpointInfo(cp checkpoint.Checkpoint) api.Checkpoint {
	return api.Checkpoint{Name: cp.Name, TCP: cp.TCP, UnixSockets: cp.UnixSockets, Shell: cp.Shell,
		Exit: cp.Exit, Created: cp.Created, Container: cp.Container, BundlePath: cp.BundlePath,
		Image: cp.Image, ImageNames: cp.ImageNames}
}

// State is an immutable snapshot of every container the supervisor knows,
// sorted by id. The supervisor replaces it on each change, so readers never
// wait for the actors, however many starts are in flight.
type State struct {
	// Containers are sorted by ID.
	Containers []*api.Container
}

// Get returns the container id, if the snapshot has it.
func (s *State) Get(id string) (*api.Container, bool) {
	i, ok := slices.BinarySearchFunc(s.Containers, id, byID)
	if !ok {
		return nil, false
	}
	return s.Containers[i], true
}

// with returns a new snapshot where c replaces (or adds) its id's entry.
// Only the slice of pointers is copied: O(n) pointer moves, cheap even for
// ten thousand containers.
func (s *State) with(c *api.Container) *State {
	i, found := slices.BinarySearchFunc(s.Containers, c.ID, byID)
	next := make([]*api.Container, 0, len(s.Containers)+1)
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
	next := make([]*api.Container, 0, len(s.Containers)-1)
	next = append(next, s.Containers[:i]...)
	next = append(next, s.Containers[i+1:]...)
	return &State{Containers: next}
}

func byID(c *api.Container, id string) int { return strings.Compare(c.ID, id) }
