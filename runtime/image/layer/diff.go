package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Diff writes the overlayfs upper directory dir (what a container changed
// of its image) to w as an OCI layer tar stream: the inverse of Unpack,
// which turns it back into an upper directory. Overlay's whiteouts (0/0
// character devices) become ".wh.NAME" entries and its opaque directories a
// ".wh..wh..opq" entry; a file linked twice is written once and then as a
// hard link; the extended attributes Unpack keeps are kept. Anything else
// overlayfs may keep in an upper directory (the xattrs of redirect_dir and
// metacopy, which troupe's mounts do not turn on) is left out.
func Diff(ctx context.Context, dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // (dev, inode) -> the first name written
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return writeWhiteout(tw, rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		h.Name, h.Uname, h.Gname = filepath.ToSlash(rel), "", ""
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.Format = tar.FormatPAX
		if d.IsDir() {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeReg && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				links[key] = h.Name
			}
		}
		if h.Typeflag != tar.TypeSymlink {
			if err := addXattrs(h, path); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if d.IsDir() && isOpaque(path) {
			if err := tw.WriteHeader(&tar.Header{Name: h.Name + opaqueMarker, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
				return err
			}
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.CopyN(tw, f, h.Size); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("diff of %s: %w", dir, err)
	}
	return tw.Close()
}

func writeWhiteout(tw *tar.Writer, rel string) error {
	name := filepath.ToSlash(filepath.Join(filepath.Dir(rel), whiteoutPrefix+filepath.Base(rel)))
	return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644})
}

// isOpaque reports whether the directory at path hides the layers below.
func isOpaque(path string) bool {
	var buf [1]byte
	n, err := unix.Lgetxattr(path, overlayOpaque, buf[:])
	return err == nil && n == 1 && buf[0] == 'y'
}

// addXattrs puts the extended attributes of path that Unpack keeps into h's
// PAX records.
func addXattrs(h *tar.Header, path string) error {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(path, buf); err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if !keepXattr(name) {
			continue
		}
		vsize, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return err
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(path, name, val); err != nil {
			return err
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+name] = string(val[:vsize])
	}
	return nil
}
