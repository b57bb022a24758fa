// Package rootfs makes and removes the root filesystems of containers
// started from images: an overlay of the image's read-only layer
// directories (package layer's) under a writable upper directory of the
// container's own.
//
// Under one directory, per container:
//
//	<dir>/<id>/upper/    the container's writes (and whiteouts of its deletes)
//	<dir>/<id>/work/     overlayfs's scratch space, on the same file system
//	<dir>/<id>/merged/   the overlay mount: the container's root
//
// A container's directory exists from Create to Remove; a daemon that finds
// one whose container is gone (a crash between the two) removes it with
// Remove, which unmounts first and never deletes through a mount that is
// still there.
//
// A root made for a prepared container (a warm pool's), before its id is
// known, has a name that no id can take (PreparedName). Claim gives it an
// id as a symlink <id> → <name>, the way the runtime names a claimed
// prepared container: one atomic step, and the paths the container was
// made with stay valid.
package rootfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// Dir holds the root filesystems of containers made from images.
type Dir struct {
	path string
	// mount makes the overlay; a field so tests can try the classic
	// mount(2) data string as well as the kernel's fsconfig interface.
	mount func(merged, upper, work string, lowers []string) error
}

// Open returns the Dir at path, making it (mode 0700: the upper
// directories hold what containers wrote, setuid files included).
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	return &Dir{path: path, mount: mountOverlay}, nil
}

// preparedPrefix starts the names of prepared containers' roots: '+' is
// not allowed in a container id.
const preparedPrefix = "+warm-"

// PreparedName returns the name of a prepared container's root: a fresh
// random one that no container id can take.
func PreparedName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	return preparedPrefix + hex.EncodeToString(b[:]), nil
}

// validName checks a root's name: a container id or a prepared name.
func validName(name string) error {
	if rest, ok := strings.CutPrefix(name, preparedPrefix); ok && runtime.ValidID("", rest) == nil {
		return nil
	}
	return runtime.ValidID("container id", name)
}

// Claim gives the root of a prepared container, named prepared, the
// container id. errclass.AlreadyExists when id has a root already.
func (d *Dir) Claim(prepared, id string) error {
	if err := runtime.ValidID("container id", id); err != nil {
		return err
	}
	if !strings.HasPrefix(prepared, preparedPrefix) || validName(prepared) != nil {
		return fmt.Errorf("rootfs: %q is not a prepared root: %w", prepared, errclass.InvalidArgument)
	}
	if err := os.Symlink(prepared, filepath.Join(d.path, id)); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("rootfs of %s: %w", id, errclass.AlreadyExists)
		}
		return fmt.Errorf("rootfs of %s: %w", id, err)
	}
	return nil
}

// Unclaim undoes Claim: the root is the prepared one again.
func (d *Dir) Unclaim(id string) error {
	if err := runtime.ValidID("container id", id); err != nil {
		return err
	}
	link := filepath.Join(d.path, id)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("rootfs of %s: not a claimed root: %w", id, errclass.NotFound)
	}
	if err := os.Remove(link); err != nil {
		return fmt.Errorf("rootfs of %s: %w", id, err)
	}
	return nil
}

// Path is where the root filesystem of container id is (or would be)
// mounted.
func (d *Dir) Path(id string) string { return filepath.Join(d.path, id, "merged") }

// Create makes the root filesystem of container id: an overlay of lowers,
// the image's layer directories from the bottom one up, under an empty
// upper directory. It returns the mount's path. An image without layers gets
// an empty lower directory: overlayfs needs one.
func (d *Dir) Create(id string, lowers []string) (string, error) {
	return d.CreateWith(id, lowers, nil)
}

// UpperDir is the upper directory of container id: what it changed of its
// image. Read it only while the container is stopped or frozen.
func (d *Dir) UpperDir(id string) string { return filepath.Join(d.path, id, "upper") }

// CreateWith is Create with fill, if not nil, called on the (empty) upper
// directory before the mount: a container restored from a checkpoint gets
// back what it had changed of its image.
func (d *Dir) CreateWith(id string, lowers []string, fill func(upper string) error) (string, error) {
	if err := validName(id); err != nil {
		return "", err
	}
	for _, l := range lowers {
		if !filepath.IsAbs(l) || strings.ContainsAny(l, ":,") {
			// The classic mount data separates layers with ":" and
			// options with ",": a path with either would be read as
			// something else.
			return "", fmt.Errorf("rootfs: layer directory %q: must be absolute, without ':' or ',': %w", l, errclass.InvalidArgument)
		}
	}
	dir := filepath.Join(d.path, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("rootfs of %s: %w", id, errclass.AlreadyExists)
		}
		return "", fmt.Errorf("rootfs of %s: %w", id, err)
	}
	merged, err := d.create(dir, lowers, fill)
	if err != nil {
		// Nothing is mounted yet when create fails: remove the lot.
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("rootfs of %s: %w", id, err)
	}
	return merged, nil
}

func (d *Dir) create(dir string, lowers []string, fill func(string) error) (string, error) {
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	// The upper directory becomes the container's "/": the mode of an
	// image's root is 0755, as a fresh one's should be.
	for _, p := range []string{upper, work, merged} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
	}
	if fill != nil {
		if err := fill(upper); err != nil {
			return "", err
		}
	}
	if len(lowers) == 0 {
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			return "", err
		}
		lowers = []string{empty}
	}
	if err := d.mount(merged, upper, work, lowers); err != nil {
		return "", fmt.Errorf("mount overlay: %w", err)
	}
	return merged, nil
}

// Detach unmounts the root of container id from this mount namespace
// while the container keeps it: once its init has pivoted into the
// overlay, its own mount namespace holds the mount, which lives as long as
// the container's processes. Every container's mount namespace starts as a
// copy of this one, which would otherwise hold one overlay per running
// container: each start would copy, and then detach, all of them.
func (d *Dir) Detach(id string) error {
	if err := validName(id); err != nil {
		return err
	}
	merged := d.Path(id)
	if err := unix.Unmount(merged, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("rootfs of %s: detach %s: %w", id, merged, err)
	}
	return nil
}

// Remove unmounts and removes the root filesystem of container id; one
// that is not there is no error. It refuses to delete anything while the
// overlay is still mounted, so that a failed unmount never turns into a
// deletion through the mount.
func (d *Dir) Remove(id string) error {
	if err := validName(id); err != nil {
		return err
	}
	dir := filepath.Join(d.path, id)
	if target, err := os.Readlink(dir); err == nil {
		// A claimed root: what the name points to goes first, so that a
		// crash in between leaves a dangling name for List to report.
		if err := validName(target); err != nil || strings.ContainsRune(target, '/') {
			return fmt.Errorf("rootfs of %s: points to %q: %w", id, target, errclass.FailedPrecondition)
		}
		if err := d.remove(id, filepath.Join(d.path, target)); err != nil {
			return err
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rootfs of %s: %w", id, err)
		}
		return nil
	}
	return d.remove(id, dir)
}

func (d *Dir) remove(id, dir string) error {
	merged := filepath.Join(dir, "merged")
	if err := unmount(merged); err != nil {
		return fmt.Errorf("rootfs of %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("rootfs of %s: %w", id, err)
	}
	return nil
}

// List returns the ids of the containers that have a root filesystem here,
// and the names of prepared roots nobody claimed, for a daemon to remove
// those whose container is gone. A claimed root is listed by its id only
// (dangling, if a removal stopped half-way).
func (d *Dir) List() ([]string, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	var ids []string
	claimed := make(map[string]bool)
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 || runtime.ValidID("container id", e.Name()) != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join(d.path, e.Name())); err == nil {
			claimed[target] = true
			ids = append(ids, e.Name())
		}
	}
	for _, e := range entries {
		if e.IsDir() && !claimed[e.Name()] && validName(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// unmount unmounts the overlay at merged, detaching it if it is busy (a
// process in the host's namespace may still have a file open there; the
// container's own processes are gone by then), and then checks that
// nothing is mounted there any more.
func unmount(merged string) error {
	err := unix.Unmount(merged, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(merged, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
	}
	// EINVAL: not a mount point (never mounted, or already unmounted);
	// ENOENT: no such directory.
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", merged, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(merged, &st); err == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return fmt.Errorf("%s is still an overlay mount: %w", merged, errclass.FailedPrecondition)
	}
	return nil
}

// mountOverlay mounts the overlay through the kernel's file system context
// (fsopen, fsconfig): each lower directory is one "lowerdir+" call, so
// an image's layer count is not bounded by the one page a mount(2) data
// string may fill (about 40 layers at the store's path lengths). Kernels
// before 6.8 lack "lowerdir+": they get the classic mount.
func mountOverlay(merged, upper, work string, lowers []string) error {
	err := fsmountOverlay(merged, upper, work, lowers)
	if errors.Is(err, errNoLowerdirPlus) || errors.Is(err, unix.ENOSYS) {
		return classicMountOverlay(merged, upper, work, lowers)
	}
	return err
}

var errNoLowerdirPlus = errors.New("this kernel's overlayfs has no lowerdir+")

func fsmountOverlay(merged, upper, work string, lowers []string) error {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fs)
	// overlayfs stacks "lowerdir+" layers in the order given, the first on
	// top; lowers lists them from the bottom.
	for i := len(lowers) - 1; i >= 0; i-- {
		if err := unix.FsconfigSetString(fs, "lowerdir+", lowers[i]); err != nil {
			if errors.Is(err, unix.EINVAL) && i == len(lowers)-1 {
				return errNoLowerdirPlus
			}
			return fmt.Errorf("layer %s: %w", lowers[i], err)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fs, kv[0], kv[1]); err != nil {
			return fmt.Errorf("%s %s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, merged, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", merged, err)
	}
	return nil
}

// classicMountOverlay is mount(2) with all layers in its data string,
// which must fit in a page.
func classicMountOverlay(merged, upper, work string, lowers []string) error {
	top := make([]string, len(lowers))
	for i, l := range lowers {
		top[len(lowers)-1-i] = l
	}
	data := "lowerdir=" + strings.Join(top, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("%d layers do not fit in one overlay mount on this kernel (needs 6.8 for more): %w",
			len(lowers), errclass.InvalidArgument)
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}
