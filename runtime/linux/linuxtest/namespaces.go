package linuxtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Pinned are the files of new network, IPC and UTS namespaces that no
// process is in: each is bind-mounted onto its file, as `ip netns add`
// holds a network namespace and a pod manager a pod's.
type Pinned struct {
	Network, IPC, UTS string
}

// PinNamespaces makes new network, IPC and UTS namespaces, the UTS one
// with host name hostname, and bind-mounts each onto a file of a
// t.TempDir(), for a start to join by path. t's cleanup unmounts them (the
// kernel frees a namespace once nothing holds it); what a test binary that
// died left mounted there, the guard unmounts with the run's directory.
func PinNamespaces(t testing.TB, hostname string) Pinned {
	t.Helper()
	dir := t.TempDir()
	p := Pinned{Network: filepath.Join(dir, "net"), IPC: filepath.Join(dir, "ipc"), UTS: filepath.Join(dir, "uts")}
	files := map[string]string{"net": p.Network, "ipc": p.IPC, "uts": p.UTS}
	for _, f := range files {
		if err := os.WriteFile(f, nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after t.TempDir's removal, so run before it: a mount
	// left there would fail the removal.
	t.Cleanup(func() {
		for _, f := range files {
			if err := unix.Unmount(f, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				t.Errorf("unmount %s: %v", f, err)
			}
		}
	})
	if err := onThreadOfItsOwn(func() error { return pin(hostname, files) }); err != nil {
		t.Fatalf("pin namespaces: %v", err)
	}
	return p
}

// onThreadOfItsOwn runs f on a thread that ends after it: f moves its
// thread out of the process's namespaces. The goroutine that runs f returns
// locked to its thread, so the Go runtime ends the thread. Never the main
// thread, though, which the runtime keeps and which /proc/PID/ns shows for
// the whole process: while a goroutine holds the main thread, the one it
// starts runs on another.
func onThreadOfItsOwn(f func() error) error {
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			done <- f()
			return
		}
		inner := make(chan error, 1)
		go func() {
			goruntime.LockOSThread()
			inner <- f()
		}()
		err := <-inner
		goruntime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// pin moves the calling thread into new network, IPC and UTS namespaces,
// names the host, and bind-mounts each namespace onto files[its name].
func pin(hostname string, files map[string]string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	for ns, f := range files {
		if err := unix.Mount("/proc/thread-self/ns/"+ns, f, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s namespace onto %s: %w", ns, f, err)
		}
	}
	return nil
}
