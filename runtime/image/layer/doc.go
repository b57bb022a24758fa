// Package layer unpacks OCI image layers into directories that overlayfs
// stacks as lower layers: each layer once, by its diffID, shared read-only by
// every container whose image has it. It is the first building block of
// images in troupe; pulling and mounting come on top of it.
//
// # Unpacking one layer
//
// Unpack reads an uncompressed layer tar stream and writes it into an empty
// directory, converting OCI whiteouts into overlayfs's own:
//
//	r, err := layer.Decompress(blob) // gzip or plain tar, sniffed
//	stats, err := layer.Unpack(ctx, r, dir, layer.Limits{})
//
// A whiteout file ".wh.NAME" becomes a character device NAME with device
// number 0/0, and the opaque marker ".wh..wh..opq" becomes the xattr
// trusted.overlay.opaque=y on its directory. A layer's root cannot be made
// opaque (overlayfs ignores the xattr there), so an opaque marker at the root
// is refused rather than silently ignored. AUFS's own metadata
// (".wh..wh.plnk" and the like) is skipped, as Docker does.
//
// # The store
//
// A Store keeps the unpacked layers of a machine under one directory:
//
//	<root>/sha256/<hex>/   one finished layer, named by its diffID
//	<root>/tmp/            layers being unpacked or removed
//
// Store.Ensure unpacks a layer into tmp/, checks that the uncompressed stream
// hashes to the diffID, flushes the file system and only then renames the
// directory into sha256/: a layer directory that exists is complete, and a
// crash leaves at most garbage in tmp/, which OpenStore removes. Remove
// renames a layer back into tmp/ before deleting it, for the same reason.
// Concurrent Ensure calls for one diffID unpack it once; the others wait.
//
// The layer directories are shared and read-only by contract: nothing may
// write into them, containers least of all (their writes go to an overlay
// upper directory of their own). Nothing enforces this but the callers; a
// write would change every container that uses the layer, and the diffID
// would no longer say what is there. Removing a layer that a mount still uses
// is the caller's to prevent too.
//
// # Threat model
//
// A layer is hostile input: images come from registries and users that
// troupe does not trust, and unpacking runs as root. What a layer may do is
// limited to making files inside its own directory:
//
//   - Names are cleaned lexically and made relative (a leading "/" is
//     dropped, as Docker does); a name or hard link target that climbs out
//     with ".." is refused, not clamped.
//   - Nothing is ever written through a symlink: each entry's parent
//     directory is opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
//     or, on kernels without openat2, one component at a time with
//     O_NOFOLLOW; every operation then works on that descriptor and the
//     entry's last name, never following it. A symlink's target is only
//     data: it may point anywhere, since it is resolved inside the
//     container's root, not here.
//   - A hard link must name a regular file, symlink or fifo that this same
//     layer wrote before it, never a directory and never a whiteout.
//   - Device nodes are refused: only the whiteouts that Unpack makes itself
//     are devices, and 0/0 opens nothing.
//   - Extended attributes are kept only when harmless and meaningful:
//     user.* (but not user.overlay.*, which overlayfs reads when mounted with
//     userxattr), security.capability and POSIX ACLs. trusted.* is dropped,
//     since overlayfs takes trusted.overlay.* (opaque, redirect, metacopy) as
//     instructions; so are other security.* (LSM labels are the host's
//     decision) and system.*.
//   - Limits bound the entries, content bytes, path length and depth, so that
//     a small compressed blob cannot fill the disk or the inode table.
//   - A stream that ends early, or without tar's end-of-archive marker, is
//     refused: a truncated layer is not a smaller layer.
//
// Every refusal names the entry and the reason and carries
// errclass.InvalidArgument. Errors of the disk (ENOSPC) or of the reader
// are returned with their own chain and no class of the input's.
//
// Setuid and setgid bits, file capabilities and owners are kept: images rely
// on them (su, ping, sudo), and they take effect only inside a container.
// They would take effect outside one too for anybody who can reach the layer
// directories, which is why OpenStore makes its root mode 0700.
//
// Unpack needs root (CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN for trusted.*
// xattrs); owners are written as they are in the layer, with no user
// namespace mapping.
package layer
