package http

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/troupe-run/troupe/errclass"
	"golang.org/x/sys/unix"
)

// socketDir makes a short private directory for sockets (a socket path
// must fit in 108 bytes, and t.TempDir's names are long).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "troupe-listen-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listen calls Listen and closes what it opens when the test ends.
func listen(t *testing.T, address string, o ListenOptions) (net.Listener, error) {
	t.Helper()
	l, err := Listen(address, o)
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, err
}

// dials reports whether a unix socket at path answers.
func dials(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestListenUnix(t *testing.T) {
	t.Run("mode", func(t *testing.T) {
		sock := filepath.Join(socketDir(t), "run", "troupe.sock")
		if _, err := listen(t, "unix://"+sock, ListenOptions{}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
		}
		// The directory it made is not open to others.
		if di, err := os.Stat(filepath.Dir(sock)); err != nil || di.Mode().Perm()&0o022 != 0 {
			t.Errorf("socket directory: %v, %v", di.Mode(), err)
		}
		if !dials(sock) {
			t.Error("nothing answers on the socket")
		}
	})

	t.Run("never another mode", func(t *testing.T) {
		// The socket appears at its path with its mode already set: never
		// made there and changed after (while others could connect), as
		// the directory's events show. Under umask 0 a socket is made
		// 0777: open to everyone until a chmod.
		dir := socketDir(t)
		sock := filepath.Join(dir, "troupe.sock")
		events := watchDir(t, dir)
		old := syscall.Umask(0)
		_, err := listen(t, "unix://"+sock, ListenOptions{})
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		got := events()
		if len(got) == 0 || got[0] != "MOVED_TO" || slices.Contains(got, "ATTRIB") || slices.Contains(got, "CREATE") {
			t.Errorf("events of %s: %v; want it moved into place once made, never made there or changed", sock, got)
		}
		if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket %v, %v; want 0660", fi.Mode(), err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("the directory holds %d entries, want the socket alone", len(entries))
		}
	})

	t.Run("long path", func(t *testing.T) {
		// A path that just fits a socket's 107 bytes still works, and the
		// listener tells it as its address.
		dir := socketDir(t)
		sock := filepath.Join(dir, strings.Repeat("s", 107-len(dir)-1))
		l, err := listen(t, "unix://"+sock, ListenOptions{})
		if err != nil {
			t.Fatalf("Listen on a %d-byte path: %v", len(sock), err)
		}
		if l.Addr().String() != sock {
			t.Errorf("listener address %s, want %s", l.Addr(), sock)
		}
		if !dials(sock) {
			t.Error("nothing answers on the socket")
		}
		l.Close()
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("a closed listener left its socket: %v", err)
		}
	})

	t.Run("world-writable directory", func(t *testing.T) {
		dir := filepath.Join(socketDir(t), "open")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil { // past the umask, no sticky bit
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "t.sock")
		_, err := listen(t, "unix://"+sock, ListenOptions{})
		if !errors.Is(err, errclass.InvalidArgument) {
			t.Fatalf("Listen in a 0777 directory: %v, want invalid argument", err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("a refused Listen left %s (%v)", sock, err)
		}
	})

	t.Run("stale socket", func(t *testing.T) {
		sock := filepath.Join(socketDir(t), "t.sock")
		old, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		// A daemon that died leaves its socket file behind.
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		if _, err := os.Lstat(sock); err != nil {
			t.Fatal(err)
		}
		if _, err := listen(t, "unix://"+sock, ListenOptions{}); err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		if !dials(sock) {
			t.Error("nothing answers on the replaced socket")
		}
	})

	t.Run("live socket", func(t *testing.T) {
		sock := filepath.Join(socketDir(t), "t.sock")
		if _, err := listen(t, "unix://"+sock, ListenOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := listen(t, "unix://"+sock, ListenOptions{})
		if !errors.Is(err, errclass.AlreadyExists) {
			t.Fatalf("second Listen on a live socket: %v, want already exists", err)
		}
		if !dials(sock) {
			t.Error("the second Listen broke the first daemon's socket")
		}
	})

	t.Run("not a socket", func(t *testing.T) {
		// --listen pointing at a file by mistake must not delete it.
		path := filepath.Join(socketDir(t), "precious")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := listen(t, "unix://"+path, ListenOptions{})
		if !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("Listen on a regular file: %v, want invalid argument", err)
		}
		if data, err := os.ReadFile(path); err != nil || string(data) != "keep me" {
			t.Errorf("Listen on a regular file replaced it: %q, %v", data, err)
		}
	})
}

// TestListenTCP: the API is root-equivalent, so TCP, which every local user
// and every container on the host network reaches, needs a token; loopback
// without one only when the operator insists (--insecure-tcp).
func TestListenTCP(t *testing.T) {
	var (
		none     = ListenOptions{}
		insecure = ListenOptions{InsecureTCP: true}
		token    = ListenOptions{Token: true}
	)
	for _, tc := range []struct {
		address string
		o       ListenOptions
		ok      bool
	}{
		{"tcp://127.0.0.1:0", none, false},
		{"tcp://localhost:0", none, false},
		{"tcp://[::1]:0", none, false},
		{"tcp://127.0.0.1:0", insecure, true},
		{"tcp://localhost:0", insecure, true},
		{"tcp://[::1]:0", insecure, true},
		{"tcp://127.0.0.1:0", token, true},
		// Never without a token beyond loopback, whatever the operator says.
		{"tcp://0.0.0.0:0", none, false},
		{"tcp://0.0.0.0:0", insecure, false},
		{"tcp://:0", insecure, false},
		{"tcp://[::]:0", insecure, false},
		// With a token a non-loopback listener is allowed. Only opened and
		// closed: nothing is sent to it.
		{"tcp://0.0.0.0:0", token, true},
	} {
		t.Run(fmt.Sprintf("%s %+v", tc.address, tc.o), func(t *testing.T) {
			l, err := listen(t, tc.address, tc.o)
			if tc.address == "tcp://[::1]:0" && tc.ok && err != nil && !errors.Is(err, errclass.InvalidArgument) {
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Listen(%q, %+v): %v", tc.address, tc.o, err)
			case !tc.ok && !errors.Is(err, errclass.InvalidArgument):
				t.Fatalf("Listen(%q, %+v): %v, want invalid argument", tc.address, tc.o, err)
			case !tc.ok:
				if !strings.Contains(err.Error(), "--token-file") {
					t.Errorf("the refusal %q does not say how to serve TCP", err)
				}
			default:
				if l.Addr().Network() != "tcp" {
					t.Errorf("listener on %s", l.Addr())
				}
			}
		})
	}
}

func TestListenBadAddress(t *testing.T) {
	for _, address := range []string{
		"",
		"/run/troupe.sock",
		"http://127.0.0.1:8888",
		"udp://127.0.0.1:0",
		"unix://",
		"unix:relative.sock",
		"unix://relative/t.sock",
		"tcp://127.0.0.1",
		"tcp://",
		"tcp://[::1",
		"%zz",
	} {
		t.Run(address, func(t *testing.T) {
			_, err := listen(t, address, ListenOptions{Token: true})
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Errorf("Listen(%q): %v, want invalid argument", address, err)
			}
		})
	}
}

// watchDir watches dir with inotify and returns a function that reports the
// events seen so far on the entry named troupe.sock.
func watchDir(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_ATTRIB|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	names := []struct {
		mask uint32
		name string
	}{{unix.IN_CREATE, "CREATE"}, {unix.IN_ATTRIB, "ATTRIB"}, {unix.IN_MOVED_TO, "MOVED_TO"}}
	return func() []string {
		var got []string
		buf := make([]byte, 64*1024)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return nil
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if name != "troupe.sock" {
				continue
			}
			for _, m := range names {
				if ev.Mask&m.mask != 0 {
					got = append(got, m.name)
				}
			}
		}
		return got
	}
}
