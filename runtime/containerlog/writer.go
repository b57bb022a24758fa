// Package containerlog keeps a container's output on disk, bounded: each
// line framed with its time and stream, in a file that rotates by size and
// keeps a fixed number of older files, read back across the rotation with
// tail, since and follow.
//
// A file holds one record per line, in the format of Kubernetes' CRI logs,
// which tools already read:
//
//	2026-12-02T01:35:33.123456789Z stdout F a whole line
//	2026-12-02T01:35:33.123460000Z stderr P the start of a line that
//	2026-12-02T01:35:33.124000000Z stderr F  goes on in the next record
//
// F ends a line; P says that the line goes on in the stream's next record
// (a write without a newline, or a line longer than MaxLine). The current
// file is <path>; the older ones are <path>.1 (the newest of them) to
// <path>.<MaxFiles-1>.
package containerlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Stream is where a record's output came from.
type Stream uint8

// The streams of a container's init.
const (
	Stdout Stream = iota + 1
	Stderr
)

// String is the stream's name in a record.
func (s Stream) String() string {
	if s == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Limits bound a container's log on disk: at most MaxFiles files of at most
// MaxSize bytes each.
type Limits struct {
	// MaxSize is the size at which the current file rotates.
	MaxSize int64 `json:"maxSize,omitempty"`
	// MaxFiles is how many files are kept, the current one included.
	MaxFiles int `json:"maxFiles,omitempty"`
}

// The default limits: 30 MiB per container at most, as kubelet's 10 MiB × 5
// and Docker's local driver's 20 MiB × 5 are of that order.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
)

// The bounds of Limits. A file must hold a few whole records.
const (
	MinMaxSize  = 64 << 10
	MaxMaxFiles = 100
)

// MaxLine is the longest content of one record; a longer line is split
// into several records.
const MaxLine = 16 << 10

// Validate checks l; zero fields mean the defaults (WithDefaults).
func (l Limits) Validate() error {
	if l.MaxSize != 0 && l.MaxSize < MinMaxSize {
		return fmt.Errorf("log max size %d: must be at least %d bytes", l.MaxSize, MinMaxSize)
	}
	if l.MaxFiles < 0 || l.MaxFiles > MaxMaxFiles {
		return fmt.Errorf("log max files %d: must be 1 to %d", l.MaxFiles, MaxMaxFiles)
	}
	return nil
}

// WithDefaults fills the zero fields of l from def.
func (l Limits) WithDefaults(def Limits) Limits {
	if l.MaxSize == 0 {
		l.MaxSize = def.MaxSize
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = def.MaxFiles
	}
	if l.MaxSize == 0 {
		l.MaxSize = DefaultMaxSize
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// Writer appends records to a log, rotating it. It is not safe for
// concurrent use: one goroutine (the runtime's reactor) writes every log.
// It keeps no buffer of its own; the caller lends it scratch space.
type Writer struct {
	path   string
	limits Limits
	fd     int
	size   int64
}

// Open opens the log at path for appending, creating it; with fresh, what
// was there before (older files included) goes. The directory is the
// daemon's, which runs as root, and whatever was planted at path must not
// make it write, truncate or wait on another file: a fresh log is a new
// file, made after removing the name (only the name: a link's target is
// not touched); an existing one is opened without following a symlink or
// blocking on a FIFO, and must be a regular file with no other name (a hard
// link would make its writes another file's).
func Open(path string, l Limits, fresh bool) (*Writer, error) {
	l = l.WithDefaults(Limits{})
	if err := l.Validate(); err != nil {
		return nil, err
	}
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	if fresh {
		for i := 1; i < MaxMaxFiles; i++ {
			if err := os.Remove(rotated(path, i)); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open log %s: %w", path, err)
		}
		flags |= unix.O_EXCL
	}
	fd, err := unix.Open(path, flags, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("open log %s: not a regular file of its own", path)
	}
	// Writes to a regular file never block; the flag was for the open.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return &Writer{path: path, limits: l, fd: fd, size: st.Size}, nil
}

// rotated is the name of the i-th older file of the log at path.
func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Write appends p, output of stream s at time now, as records, and returns
// scratch (grown if it had to be) for the next call. It rotates the log
// when the next record would not fit in the current file. An error means
// that some of p was not written.
func (w *Writer) Write(scratch []byte, s Stream, p []byte, now time.Time) ([]byte, error) {
	var stamp [64]byte
	prefix := now.UTC().AppendFormat(stamp[:0], time.RFC3339Nano)
	prefix = append(prefix, ' ')
	prefix = append(prefix, s.String()...)
	batch := scratch[:0]
	var errs []error
	for len(p) > 0 {
		line := p
		tag := byte('P')
		if i := bytes.IndexByte(p, '\n'); i >= 0 && i < MaxLine {
			line, tag = p[:i], 'F'
			p = p[i+1:]
		} else if len(p) > MaxLine {
			line, p = p[:MaxLine], p[MaxLine:]
		} else {
			p = nil
		}
		n := int64(len(prefix) + 3 + len(line) + 1)
		if w.size+int64(len(batch))+n > w.limits.MaxSize && w.size+int64(len(batch)) > 0 {
			errs = append(errs, w.flush(batch))
			batch = batch[:0]
			errs = append(errs, w.rotate())
		}
		batch = append(batch, prefix...)
		batch = append(batch, ' ', tag, ' ')
		batch = append(batch, line...)
		batch = append(batch, '\n')
	}
	errs = append(errs, w.flush(batch))
	return batch[:0], errors.Join(errs...)
}

// flush writes b to the current file.
func (w *Writer) flush(b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(w.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write log %s: %w", w.path, err)
		}
		w.size += int64(n)
		b = b[n:]
	}
	return nil
}

// rotate makes the current file the newest older one and starts a new one.
// The oldest beyond MaxFiles goes.
func (w *Writer) rotate() error {
	_ = unix.Close(w.fd)
	w.fd = -1
	if w.limits.MaxFiles <= 1 {
		_ = os.Remove(w.path)
	} else {
		_ = os.Remove(rotated(w.path, w.limits.MaxFiles-1))
		for i := w.limits.MaxFiles - 2; i >= 1; i-- {
			_ = os.Rename(rotated(w.path, i), rotated(w.path, i+1))
		}
		_ = os.Rename(w.path, rotated(w.path, 1))
	}
	fd, err := unix.Open(w.path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log %s: %w", w.path, err)
	}
	w.fd, w.size = fd, 0
	return nil
}

// Close closes the current file.
func (w *Writer) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	return err
}

// Remove removes the log at path with its older files.
func Remove(path string) error {
	var errs []error
	for _, p := range Files(path) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Files returns the files of the log at path that exist, oldest first.
func Files(path string) []string {
	var older []string
	for i := 1; i < MaxMaxFiles; i++ {
		if _, err := os.Lstat(rotated(path, i)); err != nil {
			break
		}
		older = append(older, rotated(path, i))
	}
	files := make([]string, 0, len(older)+1)
	for i := len(older) - 1; i >= 0; i-- {
		files = append(files, older[i])
	}
	if _, err := os.Lstat(path); err == nil {
		files = append(files, path)
	}
	return files
}
