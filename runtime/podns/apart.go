package podns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// A sandbox's mounts in the host's mount namespace make every container
// started after it dearer: a new container's init copies the whole mount
// table of the host, makes it a slave and detaches it again. 1000 pods
// started at once, their containers' inits took 33 ms of CPU each with
// three mounts a pod in the host's table, 20 ms with one, 11 ms with
// none (measured here). With Manager.Apart the mounts are
// made in a mount namespace of their own instead (the space), which is
// pinned itself, by one mount in the host's, next to Dir: Dir + ".mnt".
//
// The space's files are reached from the host through a thread that the
// Manager keeps in it (the holder): /proc/PID/task/TID/root is the space's
// root, so a sandbox's paths begin with it. They stay valid while the
// process that made them runs; another process (the agent after a
// restart) finds the same sandboxes under its own holder's root.

// space is a Manager's way into its mount namespace.
type space struct {
	// pin is the file in the host's mount namespace that holds the
	// space.
	pin string
	// root is the space's root as seen from the host: the holder's.
	root string
	// stop ends the holder; done is closed once it has.
	stop, done chan struct{}
}

// spaceFor returns m's space, starting its holder the first time.
func (m *Manager) spaceFor() (*space, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.space != nil {
		return m.space, nil
	}
	dir := filepath.Clean(m.Dir)
	s := &space{pin: dir + ".mnt", stop: make(chan struct{}), done: make(chan struct{})}
	type entered struct {
		tid  int
		made bool
		err  error
	}
	ch := make(chan entered, 1)
	onOwnThread(func() {
		defer close(s.done)
		made, err := enter(s.pin, dir)
		ch <- entered{unix.Gettid(), made, err}
		if err == nil {
			<-s.stop
		}
	})
	e := <-ch
	err := e.err
	if err == nil && e.made {
		// In the host's mount namespace, which the holder has left.
		if err = pinSpace(s.pin, fmt.Sprintf("/proc/self/task/%d/ns/mnt", e.tid)); err != nil {
			close(s.stop)
			<-s.done
		}
	}
	if err != nil {
		return nil, fmt.Errorf("podns: the sandboxes' mount namespace: %w", err)
	}
	s.root = fmt.Sprintf("/proc/%d/task/%d/root", os.Getpid(), e.tid)
	m.space = s
	return s, nil
}

// enter moves the calling thread, one of its own, into the space that pin
// holds, or into a new one if pin holds none; it says whether it made
// one. A new space holds only what its files need: the host's mounts
// on the way to dir, and /proc.
func enter(pin, dir string) (made bool, err error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return false, fmt.Errorf("unshare the file system attributes: %w", err)
	}
	if ok, err := isNamespace(pin); err != nil {
		return false, err
	} else if ok {
		return false, setnsPath(pin, unix.CLONE_NEWNS)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return false, fmt.Errorf("unshare the mount namespace: %w", err)
	}
	// Private: nothing mounted here reaches the host, nothing of the
	// host's comes in.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return false, fmt.Errorf("make the mount namespace private: %w", err)
	}
	return true, trim(dir)
}

// trim detaches the mounts the space does not need, so that it holds no
// file system (a pod's tmpfs, a container's root) busy once the host is
// done with it.
func trim(dir string) error {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	mounts, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	// Children come after their parents: the last first.
	for _, m := range slices.Backward(mounts) {
		p := m.Mountpoint
		if p == "/" || p == "/proc" || dir == p || strings.HasPrefix(dir, p+"/") {
			continue
		}
		// EINVAL: gone with a parent detached before it.
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach %s: %w", p, err)
		}
	}
	return nil
}

// pinSpace bind-mounts the namespace file ns onto pin, in the calling
// thread's mount namespace, the host's.
func pinSpace(pin, ns string) error {
	if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(pin, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(ns, pin, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin it on %s: %w", pin, err)
	}
	return nil
}

// setnsPath moves the calling thread into the namespace of file path.
func setnsPath(path string, kind int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, kind); err != nil {
		return &os.PathError{Op: "setns", Path: path, Err: err}
	}
	return nil
}

// run runs f on a thread of its own in the space.
func (s *space) run(f func() error) error {
	return onThreadOfItsOwn(func() error {
		if err := s.join(); err != nil {
			return err
		}
		return f()
	})
}

// join moves the calling thread, one of its own, into the space.
func (s *space) join() error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare the file system attributes: %w", err)
	}
	return setnsPath(s.pin, unix.CLONE_NEWNS)
}

// Close ends the thread that holds the way into the sandboxes' mount
// namespace; with no sandbox left, it also unpins the namespace, which
// the kernel then frees. The Manager may be used again after.
func (m *Manager) Close() error {
	m.mu.Lock()
	s := m.space
	m.space = nil
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	close(s.stop)
	<-s.done
	ids, err := m.List()
	if err != nil || len(ids) > 0 {
		return err
	}
	if err := unix.Unmount(s.pin, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("podns: unpin the sandboxes' mount namespace: %w", err)
	}
	if err := os.Remove(s.pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("podns: %w", err)
	}
	return nil
}
