package api

import "time"

// Image is an image in the daemon's store: the answer of GET
// /images/{ref}, and an element of ImageList.
type Image struct {
	// Digest is the manifest's digest, the image's identity
	// ("sha256:...").
	Digest string `json:"digest"`
	// Names are the references it was pulled as, fully qualified
	// ("127.0.0.1:5000/app:1", "index.docker.io/library/busybox:latest").
	Names []string `json:"names"`
	// Config is the digest of its configuration.
	Config string `json:"config"`
	// MediaType is its manifest's media type (OCI or Docker schema 2).
	MediaType string `json:"mediaType"`
	// Size is the compressed size of its layers, in bytes.
	Size int64 `json:"size"`
	// Layers are its layers, bottom first.
	Layers []ImageLayer `json:"layers"`
	// Pulled is when it was last pulled.
	Pulled time.Time `json:"pulled"`
	// Containers is how many of the daemon's containers run from it.
	Containers int `json:"containers"`
}

// ImageLayer is one layer of an image.
type ImageLayer struct {
	// Digest is the compressed blob's digest; DiffID the uncompressed
	// tar's, by which the layer is unpacked once on the machine.
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	// Size is the compressed size in bytes.
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// ImageList is the answer of GET /images.
type ImageList struct {
	Images []Image `json:"images"`
}

// PullRequest is the body of POST /images: pull Reference (a tag or a
// digest reference, "registry/repo:tag" or "registry/repo@sha256:...")
// into the store. The answer is a stream of PullProgress, one JSON object
// per line (application/x-ndjson), the last of which carries the Image or
// the Error.
type PullRequest struct {
	Reference string `json:"reference"`
	// Auth, when set, authenticates this pull to the reference's registry
	// instead of the daemon's --registry-config (a Kubernetes pod's
	// imagePullSecrets). It is used, never stored nor logged.
	Auth *RegistryAuth `json:"auth,omitempty"`
}

// RegistryAuth is what a docker config's "auths" entry holds for one
// registry: a user name and password (or token), an identity token, or a
// registry token.
type RegistryAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identityToken,omitempty"`
	RegistryToken string `json:"registryToken,omitempty"`
}

// PullProgress is one line of a pull's answer.
type PullProgress struct {
	// Layer is the digest of the layer whose bytes Done of Total have
	// arrived; empty on the last line.
	Layer string `json:"layer,omitempty"`
	Total int64  `json:"total,omitempty"`
	Done  int64  `json:"done,omitempty"`
	// Image is the pulled image, on the last line of a pull that
	// succeeded.
	Image *Image `json:"image,omitempty"`
	// Error is why the pull failed, on the last line of one that failed
	// (the status was sent with the first line: 200).
	Error *Error `json:"error,omitempty"`
}

// PullPolicy says whether starting a container from an image pulls it.
type PullPolicy string

// The pull policies of StartRequest.Pull.
const (
	// PullNever starts only from an image already in the store (404
	// otherwise): the default, so that a start never reaches a registry
	// unless asked.
	PullNever PullPolicy = "never"
	// PullMissing pulls the image when the store does not have it.
	PullMissing PullPolicy = "missing"
	// PullAlways pulls it at every start (a tag may have moved).
	PullAlways PullPolicy = "always"
)

// Mount is a mount that a start from an image adds to the container.
type Mount struct {
	// Type is "tmpfs" or "bind" (binds only where the daemon allows them).
	Type string `json:"type"`
	// Destination is the absolute path in the container.
	Destination string `json:"destination"`
	// Source is the absolute host path of a bind mount.
	Source string `json:"source,omitempty"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Size bounds a tmpfs, in bytes (0: the kernel's default).
	Size int64 `json:"size,omitempty"`
	// Mode is a tmpfs's permission bits (0: 01777).
	Mode uint32 `json:"mode,omitempty"`
	// Exec lets programs run from a tmpfs (noexec by default).
	Exec bool `json:"exec,omitempty"`
}

// ImageStart is what StartRequest says of a start from an image: the image
// and the usual overrides of what the image says. Every field but Image is
// optional.
type ImageStart struct {
	// Image is the reference (or digest) of the image to start.
	Image string `json:"image,omitempty"`
	// Pull says whether to pull it first; default PullNever. A restore
	// (Checkpoint set, Image not) takes it too, PullNever or PullMissing:
	// whether to pull the image the checkpointed container ran from, by
	// its digest, when the store lacks it.
	Pull PullPolicy `json:"pull,omitempty"`
	// Auth, when set, authenticates that pull (PullRequest.Auth).
	Auth *RegistryAuth `json:"auth,omitempty"`
	// Entrypoint, when present, replaces the image's entrypoint (and
	// drops its Cmd, as docker run --entrypoint does); [] clears it.
	Entrypoint *[]string `json:"entrypoint,omitempty"`
	// Args replace the image's Cmd.
	Args []string `json:"args,omitempty"`
	// Env entries (KEY=value) replace the image's of the same key or are
	// added.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory (absolute); default the image's.
	Cwd string `json:"cwd,omitempty"`
	// User is "name", "uid", "name:group" or "uid:gid", looked up in the
	// image; default the image's.
	User string `json:"user,omitempty"`
	// Hostname defaults to the container's id.
	Hostname string `json:"hostname,omitempty"`
	// ReadOnlyRoot makes the root file system read-only.
	ReadOnlyRoot bool `json:"readOnlyRoot,omitempty"`
	// Memory, CPUShares, CPUQuota (microseconds per CPUPeriod) and Pids
	// are the cgroup limits; 0 sets none.
	Memory    int64  `json:"memory,omitempty"`
	CPUShares uint64 `json:"cpuShares,omitempty"`
	CPUQuota  int64  `json:"cpuQuota,omitempty"`
	CPUPeriod uint64 `json:"cpuPeriod,omitempty"`
	Pids      int64  `json:"pids,omitempty"`
	// Mounts are added to the default ones.
	Mounts []Mount `json:"mounts,omitempty"`
	// CapAdd and CapDrop change the default capability set ("NET_ADMIN",
	// "CAP_NET_ADMIN" or "ALL").
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
}
