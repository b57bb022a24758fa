package main

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The daemon runs as root and trusts what it finds in its directories
// (container state it re-adopts and destroys, checkpoints it restores, logs
// it truncates) and its token file. Whoever else could write there, or read
// the token, could run anything as root through it; so the daemon checks,
// and refuses with the fix in the message, rather than trust.

// privateDir makes dir (0700) when it is missing, and otherwise checks that
// it is a directory owned by root that neither group nor others can write.
// flag names it in errors. A directory others can read is allowed: what the
// daemon keeps there is not secret, only trusted.
func privateDir(flag, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: not a directory", flag, dir)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		return fmt.Errorf("%s %s: owned by uid %d, not root: its owner could plant what the daemon trusts (chown root it)", flag, dir, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s %s: mode %04o, writable by group or others, who could plant what the daemon trusts (chmod go-w it)", flag, dir, perm)
	}
	return nil
}

// maxTokenFile bounds what is read of a token file.
const maxTokenFile = 64 << 10

// readPrivateFile reads the token file at path, which must be a regular
// file owned by root that neither group nor others can read or write: a
// token others can read is no secret, and one they can write is theirs.
// It is opened without blocking, so that a FIFO there is refused rather
// than waited on.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		return nil, fmt.Errorf("%s: owned by uid %d, not root, who could change the token (chown root it)", path, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o, open to group or others, who could read or change the token (chmod 600 it)", path, perm)
	}
	return io.ReadAll(io.LimitReader(f, maxTokenFile))
}
