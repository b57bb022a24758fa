package api

// PoolRequest is the body of PUT /pools/{name}: it creates a warm pool
// (201) or resizes one (200), answering with the Pool. A pool is of a
// bundle or of an image: a start whose bundlePath is a pool's claims one
// of its prepared containers, and so does a start from the pool's image
// (the same digest) with the same overrides.
type PoolRequest struct {
	// BundlePath is the bundle the pool prepares containers of; it may be
	// left out when resizing.
	BundlePath string `json:"bundlePath,omitempty"`
	// ImageStart, instead, is the image and the overrides of the
	// containers the pool prepares, as a start from an image gives them;
	// "pull" applies when the pool is made.
	ImageStart
	// Size is how many prepared containers to keep ready; required, so
	// that a forgotten size is an error rather than an empty pool.
	Size *int `json:"size"`
}

// Pool is a warm pool: containers prepared ahead (made, not yet running)
// so that a start only has to run them.
type Pool struct {
	Name       string `json:"name"`
	BundlePath string `json:"bundlePath,omitempty"`
	// Image is the image reference a pool of an image was made with, and
	// Digest the image it stands for: a start claims from the pool when
	// its reference names that digest (a tag that moved since goes cold).
	Image  string `json:"image,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Size is how many prepared containers the pool keeps ready.
	Size int `json:"size"`
	// Ready are prepared now; Filling are being prepared.
	Ready   int `json:"ready"`
	Filling int `json:"filling"`
	// Error is the last failure to prepare one, until one succeeds.
	Error string `json:"error,omitempty"`
}
