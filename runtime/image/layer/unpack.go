package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/errclass"
)

// OCI whiteout names (image-spec, layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	// aufsMetaPrefix names AUFS's own bookkeeping, which some old layers
	// carry and which means nothing here.
	aufsMetaPrefix = ".wh..wh."
)

// overlayOpaque is the xattr that makes an overlayfs directory hide the
// layers below it.
const overlayOpaque = "trusted.overlay.opaque"

// paxXattr prefixes the PAX records that carry extended attributes.
const paxXattr = "SCHILY.xattr."

// maxID is the largest uid or gid a layer may name: (uint32)-1 means "leave
// unchanged" to chown.
const maxID = 1<<32 - 2

// Unpack reads the uncompressed layer tar stream r and writes it into dir as
// an overlayfs lower directory (see the package doc for what is kept, what
// is converted and what is refused). dir must be empty or not exist; its
// parent must. A refused entry fails the whole layer with an error naming it
// and carrying errclass.InvalidArgument; ctx is honoured between entries and
// during large files. On error dir holds part of the layer: the caller
// removes it (Store does).
func Unpack(ctx context.Context, r io.Reader, dir string, limits Limits) (Stats, error) {
	stats, err := unpackInto(ctx, r, dir, limits, false)
	if err != nil {
		return stats, fmt.Errorf("unpack layer into %s: %w", dir, err)
	}
	return stats, nil
}

// unpackInto is Unpack without the context of its errors. noOpenat2 makes
// it resolve paths as it does on a kernel without openat2, for the tests of
// that fallback.
func unpackInto(ctx context.Context, r io.Reader, dir string, limits Limits, noOpenat2 bool) (Stats, error) {
	if err := emptyDir(dir); err != nil {
		return Stats{}, err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, err
	}
	defer unix.Close(root)
	u := &unpacker{
		limits:   limits.withDefaults(),
		dirs:     dirs{root: root, noOpenat2: noOpenat2},
		dirTimes: map[string][]unix.Timespec{},
		buf:      make([]byte, 128<<10),
	}
	return u.run(ctx, r)
}

// emptyDir makes dir, or checks that it is empty: Unpack judges a hard
// link's target by what is there, which must be this layer's only.
func emptyDir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		return os.Chmod(dir, 0o755) // past the umask
	}
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return errors.New("directory not empty")
	}
	return nil
}

// unpacker holds the state of one Unpack.
type unpacker struct {
	limits Limits
	dirs   dirs
	stats  Stats
	// dirTimes are set once every entry is in: making an entry changes
	// its directory's mtime.
	dirTimes map[string][]unix.Timespec
	// content is the entries' content read so far, written or skipped,
	// which MaxBytes bounds.
	content int64
	buf     []byte
}

// hasContent says whether the tar reader reads content for h: every type
// but those that are a header only.
func hasContent(h *tar.Header) bool {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return false
	}
	return true
}

func (u *unpacker) run(ctx context.Context, r io.Reader) (Stats, error) {
	src := &countingReader{r: r}
	tr := tar.NewReader(src)
	for {
		if err := ctx.Err(); err != nil {
			return u.stats, err
		}
		before := src.n
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Go's reader takes a stream that stops between two entries
			// as complete; tar's end is two zero blocks, read here after
			// the last entry's padding (under 512 bytes).
			if src.n-before < 2*512 {
				if src.err != nil && !errors.Is(src.err, io.EOF) {
					return u.stats, fmt.Errorf("read layer: %w", src.err)
				}
				return u.stats, invalid("the stream ends without tar's end-of-archive marker (truncated?)")
			}
			break
		}
		if err != nil {
			return u.stats, readError(src, err, "")
		}
		u.stats.Entries++
		if u.stats.Entries > u.limits.MaxEntries {
			return u.stats, invalid("more than %d entries", u.limits.MaxEntries)
		}
		content := hasContent(h)
		if content && (h.Size < 0 || u.content+h.Size > u.limits.MaxBytes) {
			return u.stats, refuse(h.Name, "content over the layer's limit of %d bytes", u.limits.MaxBytes)
		}
		if err := u.entry(ctx, tr, src, h); err != nil {
			return u.stats, err
		}
		// What an entry did not read (a whiteout's content) is read
		// here rather than by Next, so that Next reads only padding and
		// the end-of-archive marker, which it must find.
		if content {
			if _, err := io.CopyBuffer(io.Discard, &ctxReader{ctx: ctx, r: tr}, u.buf); err != nil {
				if ctx.Err() != nil {
					return u.stats, ctx.Err()
				}
				return u.stats, readError(src, err, h.Name)
			}
			u.content += h.Size
		}
	}
	return u.stats, u.setDirTimes()
}

// readError tells a stream that is cut short or not tar (the input's fault)
// from a reader that failed (the caller's: a network, a disk).
func readError(src *countingReader, err error, entry string) error {
	where := "read layer"
	if entry != "" {
		where = fmt.Sprintf("layer entry %q", entry)
	}
	switch {
	case src.err != nil && !errors.Is(src.err, io.EOF):
		return fmt.Errorf("%s: %w", where, src.err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(src.err, io.EOF):
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("%s: the stream ends early (truncated?): %w", where, io.ErrUnexpectedEOF))
	default:
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("%s: not a valid tar stream: %w", where, err))
	}
}

// invalid is an error of the layer as a whole.
func invalid(format string, args ...any) error {
	return errclass.With(errclass.InvalidArgument, fmt.Errorf("invalid layer: "+format, args...))
}

// refuse is the error for a hostile or malformed entry.
func refuse(name, format string, args ...any) error {
	return errclass.With(errclass.InvalidArgument, fmt.Errorf("layer entry %q: "+format, append([]any{name}, args...)...))
}

// fsError wraps an error of the file system while making entry name. The
// errors that only a malformed entry causes (a name too long, an xattr the
// kernel rejects, too many links) are the input's.
func fsError(name, op string, err error) error {
	err = fmt.Errorf("layer entry %q: %s: %w", name, op, err)
	for _, e := range []error{unix.EINVAL, unix.ENAMETOOLONG, unix.EMLINK, unix.E2BIG, unix.ERANGE} {
		if errors.Is(err, e) {
			return errclass.With(errclass.InvalidArgument, err)
		}
	}
	return err
}

// resolveError words a failure to open an entry's parent.
func resolveError(name string, err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		return refuse(name, "parent %q is %v", pe.path, pe.err)
	}
	return fsError(name, "open parent directory", err)
}

// clean turns an archive name into a path relative to the layer root ("."
// for the root itself): leading slashes go, as Docker does, "." and ".."
// resolve lexically, and a name that climbs above the root is refused rather
// than clamped, being a sign of a hostile layer rather than a sloppy one.
func (u *unpacker) clean(entry, name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", refuse(entry, "the name %q holds a NUL byte", name)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", refuse(entry, "%q climbs out of the layer with ..", name)
	}
	if len(p) > u.limits.MaxPathLen {
		return "", refuse(entry, "path longer than %d bytes", u.limits.MaxPathLen)
	}
	if p == "." {
		return p, nil
	}
	comps := strings.Split(p, "/")
	if len(comps) > u.limits.MaxDepth {
		return "", refuse(entry, "path deeper than %d components", u.limits.MaxDepth)
	}
	for _, c := range comps {
		if len(c) > nameMax {
			return "", refuse(entry, "a name longer than %d bytes", nameMax)
		}
	}
	return p, nil
}

// entry makes one tar entry.
func (u *unpacker) entry(ctx context.Context, tr *tar.Reader, src *countingReader, h *tar.Header) error {
	name, err := u.clean(h.Name, h.Name)
	if err != nil {
		return err
	}
	parent, base := path.Dir(name), path.Base(name)
	if strings.Contains("/"+parent+"/", "/"+aufsMetaPrefix) {
		return nil // inside AUFS's bookkeeping directories (.wh..wh.plnk)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(h.Name, parent, base)
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
	case tar.TypeDir, tar.TypeFifo:
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.IndexByte(h.Linkname, 0) >= 0 || len(h.Linkname) > u.limits.MaxPathLen {
			return refuse(h.Name, "symlink target must be 1 to %d bytes without NUL", u.limits.MaxPathLen)
		}
	case tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return refuse(h.Name, "device nodes are not allowed in a layer")
	case tar.TypeXGlobalHeader:
		return nil // global PAX defaults; Go's reader gives them as an entry
	default:
		return refuse(h.Name, "unsupported entry type %q", h.Typeflag)
	}
	if h.Uid < 0 || h.Uid > maxID || h.Gid < 0 || h.Gid > maxID {
		return refuse(h.Name, "owner %d:%d out of range", h.Uid, h.Gid)
	}
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return refuse(h.Name, "only a directory can be the layer's root")
		}
		return u.dir(h, name, u.dirs.root, ".", false)
	}

	pfd, err := u.dirs.open(parent, true)
	if err != nil {
		return resolveError(h.Name, err)
	}
	defer unix.Close(pfd)

	// A later entry of the same name replaces an earlier one, except that
	// a directory stays a directory and takes the new metadata.
	var st unix.Stat_t
	exists := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	// A whiteout hides the lower layers' NAME; a directory NAME that this
	// layer makes after it must hide them too, so it becomes opaque.
	wasWhiteout := exists && isWhiteout(&st)

	if h.Typeflag == tar.TypeLink {
		// Checked before anything at name is removed: a link to itself
		// would otherwise find its target gone.
		return u.hardlink(h, name, pfd, base, exists)
	}
	if exists && !(isDir && h.Typeflag == tar.TypeDir) {
		if err := removeAt(pfd, base); err != nil {
			return fsError(h.Name, "replace earlier entry", err)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return u.dir(h, name, pfd, base, wasWhiteout)
	case tar.TypeSymlink:
		return u.symlink(h, pfd, base)
	case tar.TypeFifo:
		return u.fifo(h, pfd, base)
	default:
		return u.file(ctx, tr, src, h, pfd, base)
	}
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// whiteout converts an OCI whiteout or opaque marker in directory parent.
func (u *unpacker) whiteout(entry, parent, base string) error {
	if strings.HasPrefix(base, aufsMetaPrefix) && base != opaqueMarker {
		return nil
	}
	u.stats.Whiteouts++
	if base == opaqueMarker {
		if parent == "." {
			return refuse(entry, "an opaque marker at the layer's root: overlayfs cannot hide the layers below a root")
		}
		fd, err := u.dirs.open(parent, true)
		if err != nil {
			return resolveError(entry, err)
		}
		defer unix.Close(fd)
		return u.setOpaque(entry, fd)
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return refuse(entry, "a whiteout of %q: only names inside the layer can be whited out", path.Join(parent, target))
	}
	pfd, err := u.dirs.open(parent, true)
	if err != nil {
		return resolveError(entry, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	err = unix.Fstatat(pfd, target, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
			return fsError(entry, "make whiteout", err)
		}
		return nil
	case err != nil:
		return fsError(entry, "stat whiteout target", err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// The layer has its own target too: it stays, and as the whiteout
		// must still hide the lower layers' one, it becomes opaque.
		fd, err := openDirAt(pfd, target)
		if err != nil {
			return fsError(entry, "open whiteout target", err)
		}
		defer unix.Close(fd)
		return u.setOpaque(entry, fd)
	default:
		return nil // the layer's own non-directory hides the lower ones already
	}
}

func (u *unpacker) setOpaque(entry string, pathfd int) error {
	fd, err := reopen(pathfd)
	if err != nil {
		return fsError(entry, "open directory", err)
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0); err != nil {
		return fsError(entry, "make directory opaque", err)
	}
	return nil
}

// dir makes directory base in pfd, or updates the one there.
func (u *unpacker) dir(h *tar.Header, name string, pfd int, base string, opaque bool) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fsError(h.Name, "make directory", err)
	}
	pathfd, err := openDirAt(pfd, base)
	if err != nil {
		return fsError(h.Name, "open directory", err)
	}
	fd, err := reopen(pathfd)
	unix.Close(pathfd)
	if err != nil {
		return fsError(h.Name, "open directory", err)
	}
	defer unix.Close(fd)
	if err := u.attrs(h, fd); err != nil {
		return err
	}
	if opaque {
		if err := u.setOpaque(h.Name, fd); err != nil {
			return err
		}
	}
	u.dirTimes[name] = times(h)
	return nil
}

// file makes regular file base in pfd with the entry's content.
func (u *unpacker) file(ctx context.Context, tr *tar.Reader, src *countingReader, h *tar.Header, pfd int, base string) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fsError(h.Name, "create file", err)
	}
	f := os.NewFile(uintptr(fd), h.Name)
	defer f.Close()
	w := &fileWriter{f: f}
	n, err := io.CopyBuffer(w, &ctxReader{ctx: ctx, r: tr}, u.buf)
	u.stats.Bytes += n
	switch {
	case w.err != nil:
		return fsError(h.Name, "write", w.err)
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return readError(src, err, h.Name)
	}
	if err := u.attrs(h, fd); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fsError(h.Name, "write", err)
	}
	return u.setTimes(h, pfd, base)
}

// attrs gives the open file or directory fd the entry's owner, mode and
// xattrs, in that order: chown clears setuid bits and file capabilities.
func (u *unpacker) attrs(h *tar.Header, fd int) error {
	if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
		return fsError(h.Name, "chown", err)
	}
	if err := unix.Fchmod(fd, uint32(h.Mode&0o7777)); err != nil {
		return fsError(h.Name, "chmod", err)
	}
	for _, k := range slices.Sorted(maps.Keys(h.PAXRecords)) {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if !keepXattr(name) {
			u.stats.DroppedXattrs++
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(h.PAXRecords[k]), 0); err != nil {
			return fsError(h.Name, "set xattr "+name, err)
		}
	}
	return nil
}

// keepXattr says whether a layer may set xattr name (see the package doc).
func keepXattr(name string) bool {
	switch {
	case name == "security.capability",
		name == "system.posix_acl_access",
		name == "system.posix_acl_default":
		return true
	case strings.HasPrefix(name, "user.overlay."):
		return false
	default:
		return strings.HasPrefix(name, "user.")
	}
}

// dropXattrs counts the xattrs of an entry that cannot carry them: Linux
// has no fsetxattr for a symlink or fifo reached without following it, and
// nothing there (user.* is not even allowed on them) matters.
func (u *unpacker) dropXattrs(h *tar.Header) {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			u.stats.DroppedXattrs++
		}
	}
}

func (u *unpacker) symlink(h *tar.Header, pfd int, base string) error {
	if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
		return fsError(h.Name, "make symlink", err)
	}
	if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsError(h.Name, "chown", err)
	}
	u.dropXattrs(h)
	return u.setTimes(h, pfd, base)
}

func (u *unpacker) fifo(h *tar.Header, pfd int, base string) error {
	if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
		return fsError(h.Name, "make fifo", err)
	}
	// Both follow a symlink at base, and there is none: base was made
	// just now, in a directory that only this unpacker writes.
	if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsError(h.Name, "chown", err)
	}
	if err := unix.Fchmodat(pfd, base, uint32(h.Mode&0o7777), 0); err != nil {
		return fsError(h.Name, "chmod", err)
	}
	u.dropXattrs(h)
	return u.setTimes(h, pfd, base)
}

// hardlink links base in pfd to an earlier entry of this layer.
func (u *unpacker) hardlink(h *tar.Header, name string, pfd int, base string, exists bool) error {
	target, err := u.clean(h.Name, h.Linkname)
	if err != nil {
		return err
	}
	if target == "." {
		return refuse(h.Name, "a hard link to the layer's root")
	}
	if target == name {
		return refuse(h.Name, "a hard link to itself")
	}
	tfd, err := u.dirs.open(path.Dir(target), false)
	if errors.Is(err, unix.ENOENT) {
		return refuse(h.Name, "hard link target %q is not in this layer: a link must follow its target", h.Linkname)
	}
	if err != nil {
		return resolveError(h.Name, err)
	}
	defer unix.Close(tfd)
	tbase := path.Base(target)
	var st unix.Stat_t
	err = unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return refuse(h.Name, "hard link target %q is not in this layer: a link must follow its target", h.Linkname)
	}
	if err != nil {
		return fsError(h.Name, "stat hard link target", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFLNK, unix.S_IFIFO:
	default:
		return refuse(h.Name, "hard link target %q is not a file, symlink or fifo", h.Linkname)
	}
	if exists {
		if err := removeAt(pfd, base); err != nil {
			return fsError(h.Name, "replace earlier entry", err)
		}
	}
	// Flags 0: a link to a symlink is a link to the symlink itself.
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fsError(h.Name, "make hard link", err)
	}
	return nil
}

func times(h *tar.Header) []unix.Timespec {
	atime := h.AccessTime
	if atime.IsZero() {
		atime = h.ModTime
	}
	return []unix.Timespec{timespec(atime), timespec(h.ModTime)}
}

// timespec converts without time.Time.UnixNano, which overflows outside
// 1678..2262, dates that a tar header can hold.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func (u *unpacker) setTimes(h *tar.Header, pfd int, base string) error {
	if err := unix.UtimesNanoAt(pfd, base, times(h), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsError(h.Name, "set times", err)
	}
	return nil
}

// setDirTimes gives the directories their times once nothing more is made
// in them. A directory that a later entry replaced is skipped.
func (u *unpacker) setDirTimes() error {
	for _, name := range slices.Sorted(maps.Keys(u.dirTimes)) {
		pfd, err := u.dirs.open(path.Dir(name), false)
		if err != nil {
			continue
		}
		base := path.Base(name)
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.UtimesNanoAt(pfd, base, u.dirTimes[name], unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Close(pfd)
		if err != nil {
			return fsError(name, "set times", err)
		}
	}
	return nil
}

// countingReader counts what the tar reader consumed and keeps the error
// that ended the stream, io.EOF included.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// ctxReader ends a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fileWriter keeps the file's own error apart from the reader's, and hides
// os.File's ReadFrom, which would bypass the copy buffer.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
