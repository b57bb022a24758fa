package linux

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// A prepared container lives in libcontainer's state root under a name of
// its own, which no container id can take ('+' is not allowed in ids), and
// keeps it for life: its cgroups and state dir are named by it. Claiming it
// adds a symlink <id> → <name> beside it; that symlink is the only record of
// its id, so a claim is atomic and a crash leaves either a container or an
// unclaimed prepared one (RemovePrepared sweeps those).
const preparedPrefix = "+warm-"

var _ runtime.Preparer = (*Runtime)(nil)

// Prepare implements runtime.Preparer.
func (r *Runtime) Prepare(ctx context.Context, bundlePath string) (runtime.Prepared, error) {
	stamp, err := stampOf(bundlePath)
	if err != nil {
		return nil, err
	}
	name, err := preparedName()
	if err != nil {
		return nil, err
	}
	c, err := r.prepare(ctx, name, bundlePath)
	if err != nil {
		return nil, err
	}
	// Best effort: without it, the claimant's first OnOOM makes the
	// watch.
	_, _ = c.oomWatch()
	return &prepared{r: r, c: c, stamp: stamp}, nil
}

// RemovePrepared destroys the prepared containers nobody claimed, such as
// those of a warm pool when the daemon that made it stopped. It is for a
// daemon starting up: it would take the pool of another live Runtime on the
// same state directory too.
func (r *Runtime) RemovePrepared(ctx context.Context) error {
	entries, err := os.ReadDir(r.stateRoot)
	if err != nil {
		return fmt.Errorf("remove prepared containers: %w", err)
	}
	claimed := make(map[string]bool)
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		link := filepath.Join(r.stateRoot, e.Name())
		target, err := os.Readlink(link)
		if err != nil {
			continue
		}
		if _, err := os.Stat(link); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(link) // its container is gone
			continue
		}
		claimed[target] = true
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, preparedPrefix) || claimed[name] {
			continue
		}
		lc, err := libcontainer.Load(r.stateRoot, name)
		if err != nil {
			// A prepare that died half-way: nothing runs, the dir remains.
			errs = append(errs, os.RemoveAll(filepath.Join(r.stateRoot, name)))
			continue
		}
		m, _ := readMeta(r.stateRoot, name)
		// Destroy kills a created container's init and removes its cgroups.
		errs = append(errs, lc.Destroy())
		if m.LogPath != "" {
			_ = containerlog.Remove(m.LogPath)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove prepared containers: %w", err)
	}
	return nil
}

func preparedName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("prepare container: %w", err)
	}
	return preparedPrefix + hex.EncodeToString(b[:]), nil
}

// prepared is the libcontainer implementation of runtime.Prepared.
type prepared struct {
	r     *Runtime
	c     *container
	stamp bundleStamp

	mu   sync.Mutex
	done bool // claimed or discarded
}

// BundlePath implements runtime.Prepared.
func (p *prepared) BundlePath() string { return p.c.meta.BundlePath }

// Stale implements runtime.Prepared.
func (p *prepared) Stale() bool {
	now, err := stampOf(p.c.meta.BundlePath)
	return err != nil || now != p.stamp
}

// Claim implements runtime.Prepared.
func (p *prepared) Claim(ctx context.Context, id string, o runtime.ClaimOptions) (runtime.Container, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	if len(o.Hostname) > maxHostname {
		return nil, fmt.Errorf("claim prepared container as %q: hostname %q: longer than %d bytes: %w", id, o.Hostname, maxHostname, errclass.InvalidArgument)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil, fmt.Errorf("claim prepared container %s: already used: %w", p.c.id, errclass.FailedPrecondition)
	}
	alias := filepath.Join(p.r.stateRoot, id)
	if err := os.Symlink(p.c.id, alias); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, errclass.AlreadyExists)
		}
		return nil, fmt.Errorf("claim prepared container as %q: %w", id, err)
	}
	p.done = true
	if o.Hostname != "" {
		if err := setHostname(p.c.init.Pid(), o.Hostname); err != nil {
			_ = os.Remove(alias)
			_ = p.c.Delete(context.WithoutCancel(ctx), true)
			return nil, fmt.Errorf("claim prepared container as %q: %w", id, err)
		}
	}
	if err := p.c.lc.Exec(); err != nil {
		_ = os.Remove(alias)
		_ = p.c.Delete(context.WithoutCancel(ctx), true)
		return nil, classify(err, "start container %q", id)
	}
	p.c.id, p.c.alias = id, alias
	return p.c, nil
}

// Discard implements runtime.Prepared.
func (p *prepared) Discard(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	return p.c.Delete(ctx, true)
}

// maxHostname is the kernel's limit on a host name (HOST_NAME_MAX).
const maxHostname = 64

// setHostname names the host in the UTS namespace of the process pid (a
// prepared container's init, which waits and cannot be reaped but by us).
// A thread joins that namespace for the call and goes back to its own; if
// it cannot go back it stays locked, and Go ends it with its goroutine.
func setHostname(pid int, name string) error {
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/uts", pid))
	if err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	defer target.Close()
	// A container without a UTS namespace of its own shares the daemon's:
	// naming it would rename the machine.
	var there, here unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &there); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := unix.Stat("/proc/self/ns/uts", &here); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if there.Ino == here.Ino && there.Dev == here.Dev {
		return fmt.Errorf("set hostname: the container has no UTS namespace of its own: %w", errclass.InvalidArgument)
	}
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/uts")
		if err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("set hostname: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWUTS); err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("set hostname: join the container's UTS namespace: %w", err)
			return
		}
		err = unix.Sethostname([]byte(name))
		if err != nil {
			err = fmt.Errorf("set hostname %q: %w", name, err)
		}
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWUTS) == nil {
			goruntime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}
