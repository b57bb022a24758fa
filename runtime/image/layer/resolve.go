package layer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A layer may hold a symlink "etc -> /etc" and then an entry "etc/passwd":
// resolving that path the usual way would write the host's /etc/passwd. So
// every entry is made relative to a descriptor of its parent directory,
// opened without following any symlink, and with its last name only.

// dirs opens directories inside one layer directory.
type dirs struct {
	root int // O_PATH descriptor of the layer directory
	// noOpenat2 is set once openat2 answered ENOSYS: this kernel (or a
	// seccomp filter in front of it) does not have it, and the walk does
	// the same job one component at a time.
	noOpenat2 bool
}

// errNotDir is returned by open for a path whose component is not a
// directory; errSymlink for one whose component is a symlink.
var (
	errNotDir  = errors.New("not a directory")
	errSymlink = errors.New("a symlink")
)

// pathError says which component of a path was wrong.
type pathError struct {
	path string // the component's path, relative to the layer root
	err  error
}

func (e *pathError) Error() string { return fmt.Sprintf("%q is %v", e.path, e.err) }
func (e *pathError) Unwrap() error { return e.err }

// open returns an O_PATH descriptor of the directory rel ("." for the
// root), creating missing directories (mode 0755, owned by root) when create
// is set, as a layer need not list the parents of its entries.
func (d *dirs) open(rel string, create bool) (int, error) {
	if !d.noOpenat2 {
		fd, err := unix.Openat2(d.root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == nil {
			return fd, nil
		}
		if errors.Is(err, unix.ENOSYS) {
			d.noOpenat2 = true
		}
		// Anything else (a missing directory to create, a symlink to
		// name precisely) is the walk's to handle.
	}
	return d.walk(rel, create)
}

// walk opens rel one component at a time with O_NOFOLLOW.
func (d *dirs) walk(rel string, create bool) (int, error) {
	fd, err := unix.Openat(d.root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if rel == "." {
		return fd, nil
	}
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		next, err := openDirAt(fd, c)
		if errors.Is(err, unix.ENOENT) && create {
			err = unix.Mkdirat(fd, c, 0o755)
			if err == nil {
				// mkdir's mode went through the umask.
				err = unix.Fchmodat(fd, c, 0o755, 0)
			}
			if err == nil || errors.Is(err, unix.EEXIST) {
				next, err = openDirAt(fd, c)
			}
		}
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			// O_PATH|O_NOFOLLOW opens a symlink itself, which then is
			// not a directory: tell the two apart for the message.
			err = errNotDir
			var st unix.Stat_t
			if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = errSymlink
			}
			err = &pathError{path: strings.Join(comps[:i+1], "/"), err: err}
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// reopen turns an O_PATH descriptor of a directory into one that fsetxattr
// and fchown take.
func reopen(pathfd int) (int, error) {
	return unix.Openat(pathfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// removeAt removes name in dirfd and, when it is a directory, everything in
// it, never following a symlink.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	for _, n := range names {
		if err != nil {
			break
		}
		err = removeAt(fd, n)
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
