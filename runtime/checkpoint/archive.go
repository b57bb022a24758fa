package checkpoint

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/troupe-run/troupe/errclass"
)

// importedMeta is where an imported checkpoint.json waits to be checked.
const importedMeta = metaFile + ".import"

// DefaultMaxArchive bounds an imported archive's content: CRIU images hold a
// container's memory, so they are as large as its resident set.
const DefaultMaxArchive = 8 << 30

// Export writes checkpoint id/name to w as a tar stream: checkpoint.json and
// images/<file>, nothing else.
func (s *Store) Export(id, name string, w io.Writer) error {
	if _, _, err := s.Get(id, name); err != nil {
		return err
	}
	dir, _ := s.dir(id, name)
	tw := tar.NewWriter(w)
	add := func(rel string) error {
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil // CRIU writes only regular files; anything else stays home
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	if err := add(metaFile); err != nil {
		return fmt.Errorf("export checkpoint %s/%s: %w", id, name, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "images"))
	if err != nil {
		return fmt.Errorf("export checkpoint %s/%s: %w", id, name, err)
	}
	for _, e := range entries {
		if err := add(path.Join("images", e.Name())); err != nil {
			return fmt.Errorf("export checkpoint %s/%s: %w", id, name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export checkpoint %s/%s: %w", id, name, err)
	}
	return nil
}

// Import reads a tar stream made by Export into the new checkpoint id/name.
// The archive comes from another machine, so it is refused, and nothing is
// left behind, unless every entry is a regular file named checkpoint.json
// or images/<file> (no absolute paths, no "..", no links or devices), its
// content fits in maxBytes, and checkpoint.json parses.
func (s *Store) Import(id, name string, r io.Reader, maxBytes int64) (_ Checkpoint, retErr error) {
	images, err := s.Reserve(id, name)
	if err != nil {
		return Checkpoint{}, err
	}
	defer func() {
		if retErr != nil {
			s.Abandon(id, name)
		}
	}()
	dir := filepath.Dir(images)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("import checkpoint %s/%s: "+format+": %w", append([]any{id, name}, append(args, errclass.InvalidArgument)...)...)
	}
	// The archive's own read errors (a truncated archive, a body that
	// stopped coming or grew too large) are the request's; the disk's are
	// the daemon's. The chain is kept for the caller to tell which limit.
	src := &archiveReader{r: r}
	badRead := func(what string) error {
		if errors.Is(src.err, io.EOF) {
			return bad("%s: the archive ends early (truncated?)", what)
		}
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("import checkpoint %s/%s: %s: %w", id, name, what, src.err))
	}
	var total int64
	tr := tar.NewReader(src)
	for {
		before := src.n
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Go's tar reader takes an archive that stops at an entry's
			// end as complete; an archive cut there is not: its end is two
			// zero blocks, read here (after up to 511 bytes of padding).
			if src.n == 0 {
				return Checkpoint{}, bad("the archive is empty")
			}
			if src.n-before < 2*512 {
				return Checkpoint{}, bad("the archive ends without its end marker (truncated?)")
			}
			break
		}
		if err != nil {
			if src.err != nil {
				return Checkpoint{}, badRead("read archive")
			}
			return Checkpoint{}, bad("not a tar archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			return Checkpoint{}, bad("entry %q is not a regular file", h.Name)
		}
		rel, ok := archiveName(h.Name)
		if !ok {
			return Checkpoint{}, bad("entry %q: only checkpoint.json and images/<file> are allowed", h.Name)
		}
		if h.Size < 0 || total+h.Size > maxBytes {
			return Checkpoint{}, bad("content over the %d-byte limit", maxBytes)
		}
		total += h.Size
		if rel == metaFile {
			// Kept aside until it is checked: a checkpoint.json in place
			// would make the half-imported checkpoint visible.
			rel = importedMeta
		}
		f, err := os.OpenFile(filepath.Join(dir, rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return Checkpoint{}, bad("entry %q: %v", h.Name, err)
		}
		_, err = io.CopyN(f, tr, h.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if src.err != nil {
				return Checkpoint{}, badRead(fmt.Sprintf("entry %q", h.Name))
			}
			return Checkpoint{}, fmt.Errorf("import checkpoint %s/%s: %s: %w", id, name, h.Name, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, importedMeta))
	if err != nil {
		return Checkpoint{}, bad("no %s in the archive", metaFile)
	}
	os.Remove(filepath.Join(dir, importedMeta))
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, bad("%s: %v", metaFile, err)
	}
	// Under its new name here; Container still says where it came from.
	c.Name = name
	if err := s.Commit(id, c); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// archiveReader counts what it reads and keeps the error that ended it,
// io.EOF included: once the archive has ended, an entry that wants more is
// cut short.
type archiveReader struct {
	r   io.Reader
	n   int64
	err error
}

func (a *archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.n += int64(n)
	if err != nil {
		a.err = err
	}
	return n, err
}

// archiveName checks an archive entry's name and returns it as a relative
// path, or false.
func archiveName(name string) (string, bool) {
	if name == metaFile {
		return metaFile, true
	}
	base, ok := strings.CutPrefix(name, "images/")
	if !ok || base == "" || strings.ContainsAny(base, "/\x00") || base == "." || base == ".." {
		return "", false
	}
	return filepath.Join("images", base), true
}
