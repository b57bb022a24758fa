package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
)

// maxTrailing bounds what may follow tar's end-of-archive marker in a layer
// stream. tar pads archives to whole records (10 KiB by default, up to a
// MiB with a large blocking factor); the digest covers the padding, so it is
// read, but a layer that goes on past that is not a tar stream any more.
const maxTrailing = 1 << 20

// Store keeps the unpacked layers of a machine under one root directory,
// one read-only directory per diffID (see the package doc for the layout).
// Its methods are safe for concurrent use. One Store at a time may use a
// root: OpenStore removes what it finds in tmp/.
type Store struct {
	root   string
	limits Limits

	mu sync.Mutex
	// unpacks are the layers being unpacked, by diffID.
	unpacks map[string]*unpack
}

// unpack is one layer being unpacked; done closes when path and err are
// set.
type unpack struct {
	done chan struct{}
	path string
	err  error
}

// OpenStore opens the store at root, making it if needed, and removes the
// leftovers of a crash. Every layer is unpacked within limits. root is made
// mode 0700: layers hold setuid files that must not be reachable from the
// host.
func OpenStore(root string, limits Limits) (*Store, error) {
	s := &Store{root: root, limits: limits, unpacks: map[string]*unpack{}}
	err := os.MkdirAll(root, 0o700)
	if err == nil {
		err = os.Chmod(root, 0o700)
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(root, "sha256"), 0o700)
	}
	if err == nil {
		// Half-unpacked or half-removed layers of a crash.
		err = os.RemoveAll(s.tmp())
	}
	if err == nil {
		err = os.Mkdir(s.tmp(), 0o700)
	}
	if err != nil {
		return nil, fmt.Errorf("open layer store %s: %w", root, err)
	}
	return s, nil
}

func (s *Store) tmp() string { return filepath.Join(s.root, "tmp") }

// dir returns the directory of diffID, which must be "sha256:" and 64
// lowercase hex digits.
func (s *Store) dir(diffID string) (string, error) {
	hexPart, ok := strings.CutPrefix(diffID, "sha256:")
	if !ok || len(hexPart) != 2*sha256.Size || strings.ToLower(hexPart) != hexPart {
		return "", errclass.With(errclass.InvalidArgument, fmt.Errorf("layer diffID %q: want sha256: and 64 lowercase hex digits", diffID))
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", errclass.With(errclass.InvalidArgument, fmt.Errorf("layer diffID %q: %w", diffID, err))
	}
	return filepath.Join(s.root, "sha256", hexPart), nil
}

// Path returns the directory of layer diffID, or an error with
// errclass.NotFound when it has not been unpacked. Nothing may write into
// the directory: every container with the layer shares it.
func (s *Store) Path(diffID string) (string, error) {
	dir, err := s.dir(diffID)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errclass.With(errclass.NotFound, fmt.Errorf("layer %s: %w", diffID, err))
		}
		return "", fmt.Errorf("layer %s: %w", diffID, err)
	}
	return dir, nil
}

// Ensure returns the directory of layer diffID, unpacking it first if it is
// not there yet: open gives the layer's stream, gzip-compressed or not
// (Decompress), and is called only then. The uncompressed stream must hash
// to diffID, or nothing is kept. Calls for a diffID that is being unpacked
// wait for that unpack and return its result; one whose ctx ends first
// returns ctx.Err(). A caller whose own unpack ended with its context lets
// a waiter try again rather than hand it an error that is not its own.
//
// The directory is shared and read-only: nothing may write into it.
func (s *Store) Ensure(ctx context.Context, diffID string, open func() (io.ReadCloser, error)) (string, error) {
	final, err := s.dir(diffID)
	if err != nil {
		return "", err
	}
	for {
		s.mu.Lock()
		if u, ok := s.unpacks[diffID]; ok {
			s.mu.Unlock()
			select {
			case <-u.done:
				if isContextError(u.err) && ctx.Err() == nil {
					continue
				}
				return u.path, u.err
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		// Checked under the lock: an unpack that finished just now has
		// its directory in place before it leaves the map.
		if _, err := os.Lstat(final); err == nil {
			s.mu.Unlock()
			return final, nil
		}
		u := &unpack{done: make(chan struct{})}
		s.unpacks[diffID] = u
		s.mu.Unlock()

		func() {
			// A panic in open must not leave the waiters waiting.
			defer func() {
				s.mu.Lock()
				delete(s.unpacks, diffID)
				s.mu.Unlock()
				close(u.done)
			}()
			u.err = fmt.Errorf("unpack layer %s: did not finish", diffID)
			u.path, u.err = s.unpack(ctx, diffID, final, open)
		}()
		return u.path, u.err
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// unpack makes layer diffID at final: in a temporary directory of tmp/,
// renamed into place only once complete, verified and on disk.
func (s *Store) unpack(ctx context.Context, diffID, final string, open func() (io.ReadCloser, error)) (_ string, retErr error) {
	tmp, err := os.MkdirTemp(s.tmp(), filepath.Base(final)[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp's 0700 would be the layer root's mode unless the layer
	// has an entry for its root.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	rc, err := open()
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: open: %w", diffID, err)
	}
	defer rc.Close()
	zr, err := Decompress(rc)
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer zr.Close()
	hash := sha256.New()
	r := io.TeeReader(zr, hash)
	if _, err := unpackInto(ctx, r, tmp, s.limits, false); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxTrailing+1))
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: read the end of the stream: %w", diffID, err)
	}
	if n > maxTrailing {
		return "", errclass.With(errclass.InvalidArgument, fmt.Errorf("unpack layer %s: more than %d bytes after the tar stream's end", diffID, maxTrailing))
	}
	if got := "sha256:" + hex.EncodeToString(hash.Sum(nil)); got != diffID {
		return "", errclass.With(errclass.InvalidArgument, fmt.Errorf("unpack layer %s: the uncompressed stream has digest %s", diffID, got))
	}
	if err := publish(tmp, final); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	return final, nil
}

// publish flushes the layer in tmp to disk and renames it to final. The
// flush comes first: after a crash a layer directory that exists must be
// whole, as nothing checks it again.
func publish(tmp, final string) error {
	fd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Syncfs(fd)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Remove deletes layer diffID. It fails with errclass.NotFound when the
// layer is not there, and errclass.FailedPrecondition while it is being
// unpacked. That no container still uses it is the caller's to know.
func (s *Store) Remove(diffID string) error {
	final, err := s.dir(diffID)
	if err != nil {
		return err
	}
	trash, err := s.takeOut(diffID, final)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove layer %s: %w", diffID, err)
	}
	return nil
}

// takeOut moves layer diffID into tmp/, where a crash in the middle of its
// removal leaves it to OpenStore rather than half of it in sha256/.
func (s *Store) takeOut(diffID, final string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.unpacks[diffID]; busy {
		return "", errclass.With(errclass.FailedPrecondition, fmt.Errorf("remove layer %s: it is being unpacked", diffID))
	}
	trash, err := os.MkdirTemp(s.tmp(), "removed-")
	if err != nil {
		return "", fmt.Errorf("remove layer %s: %w", diffID, err)
	}
	if err := os.Rename(final, filepath.Join(trash, "layer")); err != nil {
		os.Remove(trash)
		if errors.Is(err, os.ErrNotExist) {
			return "", errclass.With(errclass.NotFound, fmt.Errorf("remove layer %s: %w", diffID, err))
		}
		return "", fmt.Errorf("remove layer %s: %w", diffID, err)
	}
	return trash, nil
}
