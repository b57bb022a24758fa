package imagespec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime"
)

// maxEtcFileSize bounds what is read of the image's /etc/passwd and
// /etc/group. Real ones are a few KiB; an image must not make the daemon
// read gigabytes (or a never-ending file) to start a container.
const maxEtcFileSize = 1 << 20

// execUser is a user resolved in an image.
type execUser struct {
	uid, gid uint32
	sgids    []uint32
	home     string
}

// resolver says how files of a rootfs are opened: with openat2 scoped to
// the rootfs, or (kernels before 5.6, or a seccomp filter that refuses
// openat2) with a walk that resolves each symlink inside the rootfs.
type resolver int

const (
	useOpenat2 resolver = iota
	useWalk
)

// lookupUser resolves spec ("name", "uid", "name:group", "uid:gid"...; empty
// is root) against the rootfs's /etc/passwd and /etc/group, as Docker does:
// a numeric uid need not be in /etc/passwd (its gid is then 0, its home
// "/"), a name must be; a user named without a group gets its passwd
// group and, as additional groups, those of /etc/group that list it.
func lookupUser(rootfs, spec string, r resolver) (execUser, error) {
	if name, group, ok := strings.Cut(spec, ":"); ok && (name == "" || group == "" || strings.Contains(group, ":")) {
		return execUser{}, invalid("user %q: want name, uid, name:group or uid:gid", spec)
	}
	passwd, err := readEtcFile(rootfs, "etc/passwd", r)
	if err != nil {
		return execUser{}, err
	}
	group, err := readEtcFile(rootfs, "etc/group", r)
	if err != nil {
		return execUser{}, err
	}
	u, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		name, grp, _ := strings.Cut(spec, ":")
		switch {
		case errors.Is(err, user.ErrNoPasswdEntries):
			return execUser{}, invalid("user %q not found in the image's /etc/passwd", name)
		case errors.Is(err, user.ErrNoGroupEntries):
			return execUser{}, invalid("group %q not found in the image's /etc/group", grp)
		case errors.Is(err, bufio.ErrTooLong):
			return execUser{}, invalid("user %q: the image's /etc/passwd or /etc/group has a line longer than %d bytes", spec, bufio.MaxScanTokenSize)
		}
		return execUser{}, invalid("user %q: %v", spec, err)
	}
	// The ids come from the image's files: one that the kernel would take
	// as "unchanged" (-1) or cut to 32 bits would run the process as root.
	ru := runtime.User{UID: u.Uid, GID: u.Gid, AdditionalGids: u.Sgids}
	if err := ru.Validate(); err != nil {
		return execUser{}, invalid("user %q as the image's /etc/passwd and /etc/group give it: %v", spec, err)
	}
	eu := execUser{uid: uint32(u.Uid), gid: uint32(u.Gid), home: u.Home}
	for _, g := range u.Sgids {
		eu.sgids = append(eu.sgids, uint32(g))
	}
	if eu.home == "" {
		eu.home = "/"
	}
	return eu, nil
}

// readEtcFile returns the content of the regular file name (relative, such
// as "etc/passwd") of rootfs, or a nil reader when there is none.
//
// The rootfs is an image's, and the image may be hostile: its /etc/passwd
// may be a symlink to "/etc/shadow" or to "../../../etc/shadow", meant to
// make the daemon read (and, through error messages or a HOME, tell) a host
// file, or a FIFO that never ends, or a device. So the path is resolved as
// the container would see it, every symlink and ".." inside the rootfs
// (RESOLVE_IN_ROOT), magic links of /proc refused; the file is looked at
// through an O_PATH descriptor before it is opened, so that a device is
// never opened; it must be regular, and what is read is bounded.
func readEtcFile(rootfs, name string, r resolver) (io.Reader, error) {
	where := "the image's /" + name
	fd, err := openInRoot(rootfs, name, r)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, invalid("open %s: %v", where, err)
	}
	f := os.NewFile(uintptr(fd), where)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEtcFileSize+1))
	if err != nil {
		return nil, invalid("read %s: %v", where, err)
	}
	if len(data) > maxEtcFileSize {
		return nil, invalid("%s is larger than %d bytes", where, maxEtcFileSize)
	}
	return bytes.NewReader(data), nil
}

// openInRoot opens name inside rootfs for reading, as described at
// readEtcFile, and returns its descriptor. useOpenat2 falls back to the
// walk when the kernel has no openat2.
func openInRoot(rootfs, name string, r resolver) (int, error) {
	if r == useOpenat2 {
		fd, err := openat2InRoot(rootfs, name)
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
	}
	return walkInRoot(rootfs, name)
}

const readFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK

func openat2InRoot(rootfs, name string) (int, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	pathFd, err := unix.Openat2(root, name, &how)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pathFd)
	if err := checkRegular(pathFd); err != nil {
		return -1, err
	}
	how.Flags = readFlags
	fd, err := unix.Openat2(root, name, &how)
	if err != nil {
		return -1, err
	}
	if err := sameFile(pathFd, fd); err != nil {
		return -1, err
	}
	return fd, nil
}

// walkInRoot is openat2InRoot for kernels without openat2. SecureJoin
// resolves every symlink and ".." inside rootfs, one component at a time;
// the result is then opened without following a last symlink. A rootfs
// changed while this runs could win a race, which openat2 closes; nothing
// changes an image's files while its container is being made.
func walkInRoot(rootfs, name string) (int, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return -1, err
	}
	pathFd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pathFd)
	if err := checkRegular(pathFd); err != nil {
		return -1, err
	}
	fd, err := unix.Open(p, readFlags|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, err
	}
	if err := sameFile(pathFd, fd); err != nil {
		return -1, err
	}
	return fd, nil
}

// checkRegular refuses what is not a regular file.
func checkRegular(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file (mode %#o)", st.Mode)
	}
	return nil
}

// sameFile checks that b, just opened, is the regular file that a was
// looked at as, and closes b if it is not.
func sameFile(a, b int) (err error) {
	defer func() {
		if err != nil {
			unix.Close(b)
		}
	}()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		return err
	}
	if err := unix.Fstat(b, &sb); err != nil {
		return err
	}
	if sa.Dev != sb.Dev || sa.Ino != sb.Ino || sb.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("the file changed while it was opened")
	}
	return nil
}
