package api

import "time"

// CheckpointRequest is the body of POST /containers/{id}/checkpoint/{name}:
// a CRIU dump of the container, answered 201 with the Checkpoint. Every
// field is optional.
type CheckpointRequest struct {
	// Exit stops the container after the dump; otherwise it keeps running.
	Exit bool `json:"exit,omitempty"`
	// TCP checkpoints established TCP connections.
	TCP bool `json:"tcp,omitempty"`
	// UnixSockets checkpoints connections to unix sockets outside the
	// container.
	UnixSockets bool `json:"unixSockets,omitempty"`
	// Shell allows a shell job (a process with a terminal or session).
	Shell bool `json:"shell,omitempty"`
}

// Checkpoint is one stored checkpoint of a container. Checkpoints live
// under the daemon's root, keyed by container id, and outlive the container
// and daemon restarts. GET /containers/{id}/checkpoint lists them, oldest
// first.
type Checkpoint struct {
	Name        string `json:"name"`
	TCP         bool   `json:"tcp"`
	UnixSockets bool   `json:"unixSockets"`
	Shell       bool   `json:"shell"`
	// Exit says the container was stopped by the dump.
	Exit bool `json:"exit"`
	// Created is when the checkpoint was written.
	Created time.Time `json:"created,omitzero"`
	// Container is the id of the container it was taken from.
	Container string `json:"container,omitempty"`
	// BundlePath is that container's bundle, used by a restore that names
	// none.
	BundlePath string `json:"bundlePath,omitempty"`
	// Image is the digest of the image that container ran from, if it
	// did, and ImageNames what it was pulled as: a restore needs that
	// image in the store, or pulls it by digest from those repositories
	// ("pull": "missing").
	Image      string   `json:"image,omitempty"`
	ImageNames []string `json:"imageNames,omitempty"`
}
