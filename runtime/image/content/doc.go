// Package content keeps blobs (image layers, configs, manifests) in a
// directory, each under the sha256 digest of its bytes. What is stored there
// is exactly what was asked for: a blob is verified before it gets its name.
//
// # Layout
//
//	DIR/blobs/sha256/<64 lowercase hex>   complete, verified blobs (0444)
//	DIR/ingest/<hex>-<random>             blobs being written
//
// A blob is written to a temporary file under ingest/ while its digest and
// size are computed, synced, and only then renamed into blobs/: a reader
// never sees a partial blob, and a crash leaves at most files under ingest/,
// which [Open] removes. One Store per directory: the daemon's lock on its
// --root guarantees it, and two Stores on one directory would remove each
// other's temporary files at Open.
//
//	s, err := content.Open(filepath.Join(root, "content"))
//	err = s.Ingest(ctx, "sha256:...", size, body) // verified, or nothing kept
//	rc, err := s.Open("sha256:...")
//
// # Threat model
//
// The bytes come from a registry or an archive, neither of which is
// trusted: a blob whose size or digest is not the one asked for is refused
// (errclass.InvalidArgument, naming the expected and the actual value) and
// nothing of it is kept, and Ingest never reads more than the expected size
// plus one byte, so an endless stream costs no disk. Digests come from
// manifests, which are just as untrusted, and they become file names: a
// digest is accepted only as "sha256:" followed by 64 lowercase hex digits
// ([ValidateDigest]), so that none can name a path outside blobs/sha256/.
// The directory itself is the daemon's and trusted; blobs are still opened
// without following symlinks.
//
// # Concurrency
//
// Ingests of the same digest at the same time write it once: the first
// writes, the others wait for it and return once the blob is there (or try
// themselves if the first failed). Ingests of different digests run in
// parallel.
package content
