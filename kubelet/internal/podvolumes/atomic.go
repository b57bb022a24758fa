package podvolumes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// dataLink is the symlink through which a volume's files are reached: it
// names the directory of the volume's current version.
const dataLink = "..data"

// file is one file of a volume: its path in the volume, its content and
// its permission bits.
type file struct {
	path string
	data []byte
	mode os.FileMode
}

// ownership is what fsGroup asks of a volume's files: their group and
// group access (read, or read and write).
type ownership struct {
	gid       *int64
	groupMask os.FileMode
}

// checkPath refuses a file path that is not relative, leaves the volume,
// or starts with "..", which the volume's own entries use.
func checkPath(p string) error {
	if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(p) || strings.HasPrefix(p, "..") {
		return fmt.Errorf("path %q: must be a relative path within the volume, not starting with \"..\"", p)
	}
	return nil
}

// writeAtomic makes dir hold exactly files: written into a new hidden
// directory, then published by renaming a symlink on dir/..data, each
// top-level name of files a symlink through ..data. What an earlier
// version left (other names, old directories) goes last.
func writeAtomic(dir string, files []file, own ownership) error {
	seen := map[string]bool{}
	top := map[string]bool{}
	for _, f := range files {
		if err := checkPath(f.path); err != nil {
			return err
		}
		clean := filepath.Clean(f.path)
		if seen[clean] {
			return fmt.Errorf("path %q: given twice", f.path)
		}
		seen[clean] = true
		top[strings.SplitN(clean, "/", 2)[0]] = true
	}
	version, err := os.MkdirTemp(dir, "..v")
	if err != nil {
		return err
	}
	if err := own.apply(version, 0o755, true); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(version, f.path)
		if err := mkdirs(version, filepath.Dir(f.path), own); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		if err := own.apply(p, f.mode, false); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return err
	}
	for name := range top {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataLink, name)
		if t, err := os.Readlink(link); err == nil && t == target {
			continue
		}
		if err := os.Symlink(target, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); n != dataLink && n != filepath.Base(version) && !top[n] {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirs makes the directories of rel below root.
func mkdirs(root, rel string, own ownership) error {
	if rel == "." {
		return nil
	}
	p := root
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		if err := os.Mkdir(p, 0o755); os.IsExist(err) {
			continue
		} else if err != nil {
			return err
		}
		if err := own.apply(p, 0o755, true); err != nil {
			return err
		}
	}
	return nil
}

// apply sets p's permission bits to mode (which the umask does not
// touch), with fsGroup's group and group access if asked; a directory is
// then setgid, so that what is made in it is the group's too.
func (o ownership) apply(p string, mode os.FileMode, dir bool) error {
	if o.gid != nil {
		if err := os.Lchown(p, -1, int(*o.gid)); err != nil {
			return err
		}
		mode |= o.groupMask
		if dir {
			mode |= os.ModeSetgid | 0o010
		}
	}
	return os.Chmod(p, mode)
}
