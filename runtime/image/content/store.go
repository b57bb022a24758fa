package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

const (
	// digestPrefix is the only algorithm accepted: one algorithm means one
	// directory and one way for a name to be valid.
	digestPrefix = "sha256:"
	hexLen       = sha256.Size * 2
)

// Store is a content-addressed blob store in a directory. It is safe for
// concurrent use.
type Store struct {
	blobs  string // DIR/blobs/sha256
	ingest string // DIR/ingest

	mu       sync.Mutex
	inflight map[string]chan struct{} // digest -> closed when that Ingest ends
}

// Info describes a stored blob.
type Info struct {
	Digest  string
	Size    int64
	ModTime time.Time
}

// Open opens (making it if need be) the store in dir, and removes what a
// crash left under ingest/: nothing else writes there, since one daemon
// holds the directory.
func Open(dir string) (*Store, error) {
	s := &Store{
		blobs:    filepath.Join(dir, "blobs", "sha256"),
		ingest:   filepath.Join(dir, "ingest"),
		inflight: make(map[string]chan struct{}),
	}
	for _, d := range []string{s.blobs, s.ingest} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", dir, err)
		}
	}
	leftovers, err := os.ReadDir(s.ingest)
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", dir, err)
	}
	for _, e := range leftovers {
		if err := os.RemoveAll(filepath.Join(s.ingest, e.Name())); err != nil {
			return nil, fmt.Errorf("open content store %s: remove unfinished ingest: %w", dir, err)
		}
	}
	return s, nil
}

// ValidateDigest returns an error of class InvalidArgument unless dgst is
// "sha256:" followed by exactly 64 lowercase hex digits. Only such a digest
// ever becomes a file name.
func ValidateDigest(dgst string) error {
	hexPart, ok := strings.CutPrefix(dgst, digestPrefix)
	if !ok || len(hexPart) != hexLen {
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("invalid digest %q: want sha256: and 64 lowercase hex digits", dgst))
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errclass.With(errclass.InvalidArgument, fmt.Errorf("invalid digest %q: want sha256: and 64 lowercase hex digits", dgst))
		}
	}
	return nil
}

// path returns the blob file of a validated digest.
func (s *Store) path(dgst string) (string, error) {
	if err := ValidateDigest(dgst); err != nil {
		return "", err
	}
	return filepath.Join(s.blobs, dgst[len(digestPrefix):]), nil
}

// Ingest stores the blob dgst of size bytes read from r, unless it is there
// already (then r is not read). It reads at most size+1 bytes and keeps the
// blob only if they are exactly size bytes whose sha256 is dgst; otherwise
// it returns an error of class InvalidArgument naming what was expected and
// what came, and keeps nothing. An error reading r is returned as it is,
// wrapped with the digest. Concurrent Ingests of one digest write it once.
func (s *Store) Ingest(ctx context.Context, dgst string, size int64, r io.Reader) error {
	target, err := s.path(dgst)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if size < 0 {
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("ingest %s: negative size %d", dgst, size))
	}
	for {
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		done, first := s.claim(dgst)
		if first {
			err := s.write(ctx, dgst, size, target, r)
			s.release(dgst, done)
			return err
		}
		// Another Ingest writes this blob: wait for it, then look again.
		// If it failed, this one tries with its own reader.
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("ingest %s: wait for a concurrent ingest: %w", dgst, context.Cause(ctx))
		}
	}
}

// claim returns the channel that closes when the current Ingest of dgst
// ends, and whether the caller is that Ingest (it made the channel).
func (s *Store) claim(dgst string) (chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.inflight[dgst]; ok {
		return ch, false
	}
	ch := make(chan struct{})
	s.inflight[dgst] = ch
	return ch, true
}

func (s *Store) release(dgst string, done chan struct{}) {
	s.mu.Lock()
	delete(s.inflight, dgst)
	s.mu.Unlock()
	close(done)
}

// write copies r into a temporary file, verifies it and renames it to
// target. The temporary file is removed on every failure.
func (s *Store) write(ctx context.Context, dgst string, size int64, target string, r io.Reader) (err error) {
	hexPart := dgst[len(digestPrefix):]
	f, err := os.CreateTemp(s.ingest, hexPart+"-*")
	if err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	h := sha256.New()
	cr := ctxReader{ctx, r}
	// Exactly size bytes are judged before anything past them is asked
	// for, and before an error that came with the last of them: a reader
	// that verifies on its own at EOF (as go-containerregistry's does)
	// would otherwise report a mismatch first, in its own words and class.
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(cr, size))
	if n == size {
		if got := digestOf(h); got != dgst {
			return errclass.With(errclass.InvalidArgument, fmt.Errorf("ingest: digest mismatch: expected %s, got %s", dgst, got))
		}
	}
	if err != nil {
		return fmt.Errorf("ingest %s: read after %d bytes: %w", dgst, n, err)
	}
	if n < size {
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("ingest %s: truncated: expected %d bytes, got %d", dgst, size, n))
	}
	// One byte past size tells a blob that is too long from one that is
	// exact, without reading the rest of a hostile, endless stream.
	var extra [1]byte
	switch m, perr := io.ReadFull(cr, extra[:]); {
	case m > 0:
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("ingest %s: size mismatch: expected %d bytes, got more", dgst, size))
	case perr != io.EOF:
		return fmt.Errorf("ingest %s: read after %d bytes: %w", dgst, n, perr)
	}
	// The blob must be on disk before its name says it is complete: after
	// a crash a name always means whole, verified content.
	if err = f.Chmod(0o444); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if err = os.Rename(f.Name(), target); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if err = syncDir(s.blobs); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	return nil
}

func digestOf(h hash.Hash) string { return digestPrefix + hex.EncodeToString(h.Sum(nil)) }

// ctxReader stops a copy once ctx is done, between reads: a reader that
// blocks must be unblocked by its owner (a network body is, by the same ctx).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open returns the content of blob dgst; NotFound if it is not stored.
func (s *Store) Open(dgst string) (io.ReadCloser, error) {
	p, err := s.path(dgst)
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", dgst, classify(err))
	}
	return f, nil
}

// Info returns what is known of blob dgst; NotFound if it is not stored.
func (s *Store) Info(dgst string) (Info, error) {
	p, err := s.path(dgst)
	if err != nil {
		return Info{}, fmt.Errorf("blob info: %w", err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return Info{}, fmt.Errorf("blob info %s: %w", dgst, classify(err))
	}
	return Info{Digest: dgst, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes blob dgst; NotFound if it is not stored.
func (s *Store) Delete(dgst string) error {
	p, err := s.path(dgst)
	if err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete blob %s: %w", dgst, classify(err))
	}
	return nil
}

// Walk calls fn for every stored blob, in digest order, and stops at the
// first error fn returns, returning it. Files whose names are not digests
// (none should be there) are skipped.
func (s *Store) Walk(fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range entries {
		dgst := digestPrefix + e.Name()
		if ValidateDigest(dgst) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: dgst, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

func classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errclass.With(errclass.NotFound, err)
	}
	return err
}
