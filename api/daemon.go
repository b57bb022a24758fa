package api

// Version is the answer of GET /version.
type Version struct {
	// Version is the daemon's version.
	Version string `json:"version"`
	// Go is the Go version the daemon was built with.
	Go string `json:"go"`
	// Runc is the version of runc's libcontainer in the daemon.
	Runc string `json:"runc"`
	// Criu is the verdict of the daemon's CRIU self-test, if it runs one.
	Criu *CriuVerdict `json:"criu,omitempty"`
}

// Health is the answer of GET /healthz: 200 while the daemon serves.
type Health struct {
	// Status is "ok".
	Status string `json:"status"`
	// Insecure, when set, warns whoever monitors the daemon that it serves
	// its root-equivalent API to anyone who can connect.
	Insecure string `json:"insecure,omitempty"`
	// Criu is the CRIU self-test's verdict; a CRIU that does not work
	// affects only checkpoint and restore.
	Criu *CriuVerdict `json:"criu,omitempty"`
}

// The statuses of a CRIU self-test.
const (
	CriuChecking = "checking"
	CriuPassed   = "passed"
	CriuFailed   = "failed"
)

// CriuVerdict is what the daemon's CRIU self-test found: a dump and restore
// of a small process tree at start. Checkpoint and restore work only once
// it has passed (503 before).
type CriuVerdict struct {
	// Status is CriuChecking, CriuPassed or CriuFailed.
	Status string `json:"status"`
	// Path is the criu binary tested.
	Path string `json:"path"`
	// Version is CRIU's own version, once known.
	Version string `json:"version,omitempty"`
	// Error says why CRIU cannot be used, when it failed.
	Error string `json:"error,omitempty"`
	// Took is how long the self-test ran, once it ended.
	Took string `json:"took,omitempty"`
}
