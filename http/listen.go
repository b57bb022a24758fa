package http

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/troupe-run/troupe/runtime"
)

// Listen opens a listener for address: unix:///path/to.sock or
// tcp://host:port. A unix socket is made 0660 in a directory that others
// cannot write to; a stale socket left by a dead daemon is replaced, a live
// one is not. A TCP listener on anything but loopback is refused unless
// requests need a token (withToken): the API is root-equivalent.
func Listen(address string, withToken bool) (net.Listener, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %v: %w", address, err, runtime.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if u.Host != "" { // unix://relative/path
			path = u.Host + u.Path
		}
		return listenUnix(path)
	case "tcp":
		return listenTCP(u.Host, withToken)
	}
	return nil, fmt.Errorf("listen %q: want unix:///path or tcp://host:port: %w", address, runtime.ErrInvalidArgument)
}

func listenUnix(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("listen unix %q: the path must be absolute: %w", path, runtime.ErrInvalidArgument)
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
		return nil, fmt.Errorf("listen unix %s: directory %s is world-writable; anyone could replace the socket: %w", path, dir, runtime.ErrInvalidArgument)
	}
	if fi, err := os.Lstat(path); err == nil {
		// Only a socket may be replaced: a path given by mistake must not
		// cost the file that is there.
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix %s: the path exists and is not a socket: %w", path, runtime.ErrInvalidArgument)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix %s: another daemon is serving it: %w", path, runtime.ErrAlreadyExists)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix %s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return l, nil
}

func listenTCP(hostport string, withToken bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v: %w", hostport, err, runtime.ErrInvalidArgument)
	}
	if !withToken && !isLoopback(host) {
		return nil, fmt.Errorf("listen tcp %s: not a loopback address; give --token-file to serve other hosts: %w", hostport, runtime.ErrInvalidArgument)
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
