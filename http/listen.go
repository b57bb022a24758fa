package http

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"golang.org/x/sys/unix"
)

// ListenOptions say how the requests a listener receives are checked: the
// API is root-equivalent, and a listener that anyone may reach without a
// token is a way to root.
type ListenOptions struct {
	// Token is true when every request needs a bearer token.
	Token bool
	// InsecureTCP allows a TCP listener on loopback without a token (the
	// daemon's --insecure-tcp). Every local user, and every container on
	// the host's network, can reach loopback; only an operator who says so
	// gets such a listener.
	InsecureTCP bool
}

// Listen opens a listener for address: unix:///path/to.sock or
// tcp://host:port. A unix socket is made 0660 in a directory that others
// cannot write to; a stale socket left by a dead daemon is replaced, a live
// one is not. A TCP listener needs a token (o.Token); without one it is
// refused, unless it is on loopback and o.InsecureTCP says so.
func Listen(address string, o ListenOptions) (net.Listener, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %v: %w", address, err, errclass.InvalidArgument)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if u.Host != "" { // unix://relative/path
			path = u.Host + u.Path
		}
		return listenUnix(path)
	case "tcp":
		return listenTCP(u.Host, o)
	}
	return nil, fmt.Errorf("listen %q: want unix:///path or tcp://host:port: %w", address, errclass.InvalidArgument)
}

func listenUnix(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("listen unix %q: the path must be absolute: %w", path, errclass.InvalidArgument)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("listen unix %s: directory %s is world-writable; anyone could replace the socket: %w", path, dir, errclass.InvalidArgument)
	}
	if fi, err := os.Lstat(path); err == nil {
		// Only a socket may be replaced: a path given by mistake must not
		// cost the file that is there.
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix %s: the path exists and is not a socket: %w", path, errclass.InvalidArgument)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix %s: another daemon is serving it: %w", path, errclass.AlreadyExists)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix %s: remove stale socket: %w", path, err)
		}
	}
	l, err := bindPrivately(dir, path)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return l, nil
}

// bindPrivately binds a unix socket that appears at path already 0660.
// bind(2) makes the socket with the process's umask, and connecting needs
// only write permission on it: one made at path and chmod'ed after is open,
// in between, to whoever the umask let in. The umask itself is no help: it
// is process-wide, and changing it around the bind would change it for
// every file other goroutines make meanwhile. So the socket is made in a
// new directory of its own (0700: nobody else can reach it there), given
// its mode, and renamed into place, without replacing whatever may have
// appeared at path meanwhile (a socket another daemon just made). The
// private directory is named through its descriptor (/proc/self/fd/N), so
// that the bind's path is short whatever dir is: a socket's path must fit
// in 108 bytes.
func bindPrivately(dir, path string) (net.Listener, error) {
	private, err := os.MkdirTemp(dir, ".troupe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(private)
	fd, err := unix.Open(private, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	l, err := net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/s", fd))
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	// Closing it removes path, not where it was made.
	ul.SetUnlinkOnClose(false)
	if err := unix.Fchmodat(fd, "s", 0o660, 0); err != nil {
		l.Close()
		return nil, err
	}
	if err := unix.Renameat2(fd, "s", unix.AT_FDCWD, path, unix.RENAME_NOREPLACE); err != nil {
		l.Close()
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("another daemon made it meanwhile: %w", errclass.AlreadyExists)
		}
		return nil, err
	}
	return &unixListener{UnixListener: ul, addr: &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// unixListener is a socket bound elsewhere and moved to addr: it tells
// addr, and removes its socket there when closed, as a net.UnixListener
// does with the path it was bound to.
type unixListener struct {
	*net.UnixListener
	addr *net.UnixAddr
	once sync.Once
}

func (l *unixListener) Addr() net.Addr { return l.addr }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.addr.Name) })
	return err
}

func listenTCP(hostport string, o ListenOptions) (net.Listener, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v: %w", hostport, err, errclass.InvalidArgument)
	}
	switch {
	case o.Token:
	case !isLoopback(host):
		return nil, fmt.Errorf("listen tcp %s: not a loopback address; give --token-file to serve other hosts: %w", hostport, errclass.InvalidArgument)
	case !o.InsecureTCP:
		// Loopback is no boundary: every local user and every container on
		// the host's network can connect, and the API runs anything as root.
		return nil, fmt.Errorf("listen tcp %s: no token: every local user and every container on the host network could run anything as root through it; give --token-file (or --insecure-tcp to serve it without a token anyway): %w", hostport, errclass.InvalidArgument)
	}
	l, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", hostport, err)
	}
	return l, nil
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
