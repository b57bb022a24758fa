package client

import (
	"context"
	nethttp "net/http"

	"github.com/troupe-run/troupe/actors"
)

// State is the answer of GET /state: every container and the machine.
type State struct {
	// Containers are sorted by id.
	Containers []actors.ContainerInfo `json:"containers"`
	Machine    Machine                `json:"machine"`
}

// Machine describes the daemon's machine.
type Machine struct {
	// CPUs is the number of CPUs the daemon may use.
	CPUs int `json:"cpus"`
	// Memory is the total RAM in bytes.
	Memory uint64 `json:"memory"`
}

// Version is the answer of GET /version.
type Version struct {
	// Version is the daemon's version.
	Version string `json:"version"`
	// Go is the Go version the daemon was built with.
	Go string `json:"go"`
	// Runc is the version of runc's libcontainer in the daemon.
	Runc string `json:"runc"`
	// Criu is the verdict of the daemon's CRIU self-test, if it runs one.
	Criu *Criu `json:"criu,omitempty"`
}

// Criu is the verdict of the daemon's CRIU self-test (a dump and restore
// of a small process tree at start): checkpoint and restore work only once
// it has passed.
type Criu struct {
	// Status is "checking", "passed" or "failed".
	Status string `json:"status"`
	// Path is the criu binary the daemon uses.
	Path string `json:"path"`
	// Version is CRIU's version, once known.
	Version string `json:"version,omitempty"`
	// Error says why CRIU cannot be used, when it failed.
	Error string `json:"error,omitempty"`
	// Took is how long the self-test ran.
	Took string `json:"took,omitempty"`
}

// State returns every container and the machine's figures (GET /state).
func (c *Client) State(ctx context.Context) (State, error) {
	var s State
	err := c.do(ctx, nethttp.MethodGet, "/state", nil, nil, &s)
	return s, err
}

// Version returns the daemon's version (GET /version).
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.do(ctx, nethttp.MethodGet, "/version", nil, nil, &v)
	return v, err
}

// Health returns nil when the daemon answers GET /healthz with success.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, nethttp.MethodGet, "/healthz", nil, nil, nil)
}
