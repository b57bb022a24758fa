// Package podns makes a pod's sandbox: the network, IPC and UTS
// namespaces its containers share, held by no process. Each namespace is
// bind-mounted onto a file (as `ip netns add` does), which keeps it while
// the pod lives; the containers join the namespaces by those paths (a
// start's join takes a namespace file), and the CNI plugins attach the
// network one. The Kubernetes node agent makes its pods' sandboxes with
// it, and tests their namespaces to join (linuxtest.PinNamespaces).
//
// A sandbox container (a pause process holding the namespaces) did the
// same at the cost of a container start per pod, and a pod's address then
// hung on a process that could die. Here nothing runs: making a sandbox is
// an unshare and three mounts, with no exec.
//
// Sandboxes live under Dir, one directory per pod: net, ipc and uts.
// They outlive the agent (the mounts stay until Remove), not the machine.
// With Apart, their mounts are made in a mount namespace of their own,
// not the host's (apart.go).
package podns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Sandbox names the files of a pod's namespaces.
type Sandbox struct {
	Network, IPC, UTS string
}

// kinds are the namespaces of a sandbox: the name of each file, as /proc
// names it, and its clone flag.
var kinds = []struct {
	name string
	flag int
}{
	{"net", unix.CLONE_NEWNET},
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
}

// Manager makes and removes sandboxes under Dir.
type Manager struct {
	// Dir holds a directory per sandbox; it must be on a file system
	// that does not outlive the machine's boot (under /run), as the
	// namespaces do not.
	Dir string
	// NoIPv6 gives the interfaces that come into a sandbox's network
	// namespace (the pod's eth0) no IPv6; its loopback keeps ::1. For an
	// IPv4 pod network: otherwise each new pod's eth0 sends IPv6 neighbour
	// discovery and multicast listener reports, which the bridge floods
	// to every pod (1000 pods attached at once: about 7 s of the kernel's
	// CPU, measured here).
	NoIPv6 bool
	// Apart makes the sandboxes' mounts in a mount namespace of their
	// own, not in the host's, which every new container copies (apart.go
	// says more); the sandboxes' paths then begin with /proc/PID/task/TID/root.
	// Close ends what it keeps running.
	Apart bool

	mu    sync.Mutex
	space *space
}

func (m *Manager) dir(id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return "", fmt.Errorf("podns: sandbox id %q: not a file name", id)
	}
	if m.Apart && !filepath.IsAbs(m.Dir) {
		return "", fmt.Errorf("podns: Dir %q: a relative path, with Apart", m.Dir)
	}
	return filepath.Join(m.Dir, id), nil
}

func sandboxIn(dir string) Sandbox {
	return Sandbox{Network: filepath.Join(dir, "net"), IPC: filepath.Join(dir, "ipc"), UTS: filepath.Join(dir, "uts")}
}

// Make makes sandbox id with new namespaces, its host name hostname and
// its loopback up. A sandbox of that id that is whole is returned as it
// is; one left half made (the agent died making it) is made again.
func (m *Manager) Make(id, hostname string) (Sandbox, error) {
	dir, err := m.dir(id)
	if err != nil {
		return Sandbox{}, err
	}
	if sb, ok, err := m.Get(id); err != nil || ok {
		return sb, err
	}
	if err := m.Remove(id); err != nil {
		return Sandbox{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Sandbox{}, fmt.Errorf("podns: make sandbox %s: %w", id, err)
	}
	for _, k := range kinds {
		f, err := os.OpenFile(filepath.Join(dir, k.name), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return Sandbox{}, errors.Join(fmt.Errorf("podns: make sandbox %s: %w", id, err), m.Remove(id))
		}
		f.Close()
	}
	var s *space
	if m.Apart {
		if s, err = m.spaceFor(); err != nil {
			return Sandbox{}, errors.Join(err, m.Remove(id))
		}
	}
	if err := onThreadOfItsOwn(func() error { return pin(dir, hostname, m.NoIPv6, s) }); err != nil {
		return Sandbox{}, errors.Join(fmt.Errorf("podns: make sandbox %s: %w", id, err), m.Remove(id))
	}
	if s != nil {
		return sandboxIn(s.root + dir), nil
	}
	return sandboxIn(dir), nil
}

// onThreadOfItsOwn runs f on a thread that nothing else runs on after it:
// f may move its thread into other namespaces. The goroutine that runs f
// is locked to its thread and returns locked, so the Go runtime ends the
// thread. Not the main thread, though, which the runtime keeps, idle, and
// which stands for the whole process in /proc/PID/ns: f never runs there.
func onThreadOfItsOwn(f func() error) error {
	done := make(chan error, 1)
	onOwnThread(func() { done <- f() })
	return <-done
}

// onOwnThread starts f on a goroutine locked to a thread that is not the
// main thread, and that ends when f returns.
func onOwnThread(f func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			f()
			return
		}
		// While this goroutine holds the main thread, the one it starts
		// locks itself to another.
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(locked)
			f()
		}()
		<-locked
		runtime.UnlockOSThread()
	}()
}

// pin runs on a thread of its own: it moves the thread to new namespaces,
// readies them, and bind-mounts each onto its file in dir, in space s if
// there is one.
func pin(dir, hostname string, noIPv6 bool, s *space) error {
	flags := 0
	for _, k := range kinds {
		flags |= k.flag
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("host name %q: %w", hostname, err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if noIPv6 {
		// /proc/sys/net is the opening thread's network namespace's.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("turn IPv6 off for new interfaces: %w", err)
		}
	}
	if s != nil {
		if err := s.join(); err != nil {
			return err
		}
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns", unix.Gettid())
	for _, k := range kinds {
		if err := unix.Mount(filepath.Join(self, k.name), filepath.Join(dir, k.name), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin the %s namespace: %w", k.name, err)
		}
	}
	return nil
}

// loopbackUp brings "lo" up in the calling thread's network namespace,
// as Kubernetes wants of a pod's.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Get returns sandbox id if it is whole: each of its files holds a
// namespace.
//
// With Apart, a sandbox whose mounts are in the host's mount namespace
// (made by a Manager without Apart) is found too.
func (m *Manager) Get(id string) (Sandbox, bool, error) {
	dir, err := m.dir(id)
	if err != nil {
		return Sandbox{}, false, err
	}
	if m.Apart {
		s, err := m.spaceFor()
		if err != nil {
			return Sandbox{}, false, err
		}
		sb, ok, err := whole(s.root+dir, id)
		if err != nil || ok {
			return sb, ok, err
		}
	}
	return whole(dir, id)
}

// whole returns the sandbox in dir if each of its files holds a
// namespace.
func whole(dir, id string) (Sandbox, bool, error) {
	for _, k := range kinds {
		ok, err := isNamespace(filepath.Join(dir, k.name))
		if err != nil {
			return Sandbox{}, false, fmt.Errorf("podns: sandbox %s: %w", id, err)
		}
		if !ok {
			return Sandbox{}, false, nil
		}
	}
	return sandboxIn(dir), true, nil
}

// isNamespace says whether path is a namespace file: a file of nsfs, which
// only a mount puts there.
func isNamespace(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// Remove unmounts sandbox id's namespaces and removes its directory; the
// kernel frees each namespace once no process is in it either. Removing
// a sandbox that is not there does nothing.
func (m *Manager) Remove(id string) error {
	dir, err := m.dir(id)
	if err != nil {
		return err
	}
	err = unpin(dir)
	if m.Apart && err == nil {
		var s *space
		if s, err = m.spaceFor(); err == nil {
			err = s.run(func() error { return unpin(dir) })
		}
	}
	if err != nil {
		return fmt.Errorf("podns: remove sandbox %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("podns: remove sandbox %s: %w", id, err)
	}
	return nil
}

// unpin unmounts the namespaces of the sandbox in dir, in the calling
// thread's mount namespace.
func unpin(dir string) error {
	var errs []error
	for _, k := range kinds {
		p := filepath.Join(dir, k.name)
		// A file may be mounted over more than once (two Makes racing
		// past each other's check): unmount until it is bare.
		for {
			ok, err := isNamespace(p)
			if err != nil || !ok {
				errs = append(errs, err)
				break
			}
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// List returns the ids of the sandboxes under Dir, whole or not.
func (m *Manager) List() ([]string, error) {
	entries, err := os.ReadDir(m.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("podns: list sandboxes: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
