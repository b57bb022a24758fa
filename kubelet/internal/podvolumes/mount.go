package podvolumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs on dir (size bytes at most, 0 for the
// kernel's default). exec lets programs run from it, as from an emptyDir
// on disk.
func mountTmpfs(dir string, size int64, exec bool) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if !exec {
		flags |= unix.MS_NOEXEC
	}
	opts := "mode=0755"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint says whether something is mounted on dir, without reading
// the mount table where the kernel can tell (openat2, Linux 5.6); a dir
// that does not exist is not.
func isMountPoint(dir string) (bool, error) {
	ok, err := mountinfo.Mounted(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is %s a mount point: %w", dir, err)
	}
	return ok, nil
}

// unmountVolumes unmounts what is mounted on each directory in dir (a
// pod's volumes), as many times as it is.
func unmountVolumes(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		for {
			err := unix.Unmount(p, unix.UMOUNT_NOFOLLOW)
			if err == unix.EBUSY {
				err = unix.Unmount(p, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
			}
			if err == unix.EINVAL || err == unix.ENOENT {
				break // nothing (more) mounted there
			}
			if err != nil {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
	}
	return nil
}

// anyMountBelow says whether a directory below dir is a mount point.
func anyMountBelow(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == dir {
			return nil
		}
		if found, err = isMountPoint(p); err != nil {
			return err
		}
		if found {
			return filepath.SkipAll
		}
		return nil
	})
	return found, err
}

// mountsUnder returns the mount points at or below dir, as this process's
// mount table has them.
func mountsUnder(dir string) (map[string]bool, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		return nil, fmt.Errorf("mounts under %s: %w", dir, err)
	}
	found := make(map[string]bool, len(ms))
	for _, m := range ms {
		found[m.Mountpoint] = true
	}
	return found, nil
}

// unmountAll unmounts every mount at or below dir, the deepest first, and
// fails if one stays: what is removed next must not reach into a mount.
func unmountAll(dir string) error {
	for range 3 {
		ms, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return nil
		}
		paths := make([]string, 0, len(ms))
		for p := range ms {
			paths = append(paths, p)
		}
		slices.SortFunc(paths, func(a, b string) int { return len(b) - len(a) })
		for _, p := range paths {
			if err := unix.Unmount(p, 0); err != nil && err != unix.EINVAL {
				// Busy: detach it, so that it goes once nothing uses it.
				if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
					return fmt.Errorf("unmount %s: %w", p, err)
				}
			}
		}
	}
	if ms, err := mountsUnder(dir); err != nil || len(ms) > 0 {
		return fmt.Errorf("mounts left under %s: %v (%v)", dir, ms, err)
	}
	return nil
}
