// Package pull fetches images from OCI distribution registries into a
// content store (package content), with go-containerregistry speaking the
// protocol. The engine, every container's init, must never link this
// package: hack/check-imports.sh keeps go-containerregistry out of it.
//
//	p := pull.New(store, pull.Options{AuthConfig: "/etc/troupe/auth.json"})
//	res, err := p.Pull(ctx, "registry.example/app:1.2")
//	// res.ManifestDigest, res.ConfigDigest, res.Layers[i].{Digest,DiffID}
//
// # What is pulled
//
// A reference by tag or by digest names an image manifest (OCI, or Docker
// schema 2) or an index (OCI index, Docker manifest list); an index is
// resolved to the image of Options.Platform, by default this machine's
// (GOOS/GOARCH, and the arm variant), and an index without one is an error
// naming the platforms it has. The index, manifest, config and layers are
// all stored as blobs; the manifest and the index come last, so that a
// stored manifest means its blobs are there. Layers must be plain tars
// (uncompressed, gzip or zstd); foreign and non-distributable layers, and
// manifests that are not images, are refused with an error saying so.
// The result lists each layer with its diffID from the config, which is
// what unpacking checks the uncompressed tar against.
//
// A pull that fails leaves the blobs it had stored: the store's owner
// knows which, since Options.Hold hears of each digest (blobs and diffIDs)
// before the pull looks for it, and takes back those that no image came
// to use (package image does).
//
// # Threat model
//
// The registry, and the network to it, are untrusted. Every blob is
// verified by digest and size as it is written (content.Store.Ingest), so
// a registry that serves other bytes, too few or endless ones stores
// nothing. Digests from manifests become file names only after strict
// validation. Plain HTTP goes only to loopback (127.0.0.0/8, ::1,
// localhost) and to the registries in Options.InsecureRegistries; every
// other request, including each redirect hop, is HTTPS or is refused before
// any connection is made (go-containerregistry on its own would use HTTP
// for private addresses, and a redirect could downgrade). No request waits
// more than Options.IdleTimeout for the registry's next byte, and the pull
// ends with its ctx.
//
// # Credentials
//
// Options.AuthConfig names a docker-style config.json; its "auths" entries
// (auth, or username and password, or tokens) are used, keyed by registry.
// Credential helpers and credsStore are ignored: a daemon does not run the
// programs a config file names. Without a file or an entry, pulls are
// anonymous.
package pull
