// Package checkpoint keeps checkpoints on disk: under a root directory, one
// directory per container id and checkpoint name, holding CRIU's images and
// a small metadata file. Checkpoints outlive their container and the daemon,
// so that a container can be restored later, cloned under another id, or
// moved to another daemon.
//
//	root/<container id>/<name>/checkpoint.json
//	root/<container id>/<name>/images/
//
// Ids and names are checked with runtime.ValidID before they become paths.
// Creating a checkpoint is two steps, Reserve then Commit, so that a failed
// dump leaves nothing a later List would show.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/criu"
)

// metaFile is a checkpoint's metadata, written last: a directory without it
// is an unfinished checkpoint.
const metaFile = "checkpoint.json"

// Checkpoint describes one checkpoint. The JSON field names are the API's.
type Checkpoint struct {
	Name        string    `json:"name"`
	TCP         bool      `json:"tcp"`
	UnixSockets bool      `json:"unixSockets"`
	Shell       bool      `json:"shell"`
	Exit        bool      `json:"exit"`
	Created     time.Time `json:"created"`
	// Container is the id of the container it was taken from.
	Container string `json:"container"`
	// BundlePath is that container's bundle, used when a restore names none.
	BundlePath string `json:"bundlePath"`
	// Image is the digest of the image the container ran from, if it did,
	// and ImageNames what it was pulled as. Such a checkpoint also holds
	// the container's spec (SpecFile) and what it changed of its image
	// (RootfsFile): a restore mounts a new root from the same image.
	Image      string   `json:"image,omitempty"`
	ImageNames []string `json:"imageNames,omitempty"`
}

// The files a checkpoint of a container from an image holds beside CRIU's
// images: names CRIU never writes.
const (
	SpecFile   = "troupe-spec.json"
	RootfsFile = "troupe-rootfs.tar"
)

// Store is a directory of checkpoints. Methods are safe for concurrent use
// as far as the file system makes them: Reserve of the same name twice fails
// for the second caller.
type Store struct {
	root string
}

// New returns the store at root, creating it 0700: images hold the memory
// of processes.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("checkpoint store %q must be absolute: %w", root, errclass.InvalidArgument)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	return &Store{root: root}, nil
}

func (s *Store) dir(id, name string) (string, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return "", err
	}
	if err := runtime.ValidID("checkpoint name", name); err != nil {
		return "", err
	}
	return filepath.Join(s.root, id, name), nil
}

// Reserve makes the directory of a new checkpoint and returns the directory
// CRIU writes its images to. It fails with ErrAlreadyExists when the name is
// taken.
func (s *Store) Reserve(id, name string) (images string, err error) {
	dir, err := s.dir(id, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("checkpoint %s/%s: %w", id, name, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("checkpoint %s/%s: %w", id, name, errclass.AlreadyExists)
		}
		return "", fmt.Errorf("checkpoint %s/%s: %w", id, name, err)
	}
	images = filepath.Join(dir, "images")
	if err := os.Mkdir(images, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("checkpoint %s/%s: %w", id, name, err)
	}
	return images, nil
}

// Commit records c as the finished checkpoint id/c.Name.
func (s *Store) Commit(id string, c Checkpoint) error {
	dir, err := s.dir(id, c.Name)
	if err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("checkpoint %s/%s: %w", id, c.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return fmt.Errorf("checkpoint %s/%s: %w", id, c.Name, err)
	}
	return nil
}

// Abandon removes a reserved checkpoint whose dump failed, and the
// container's directory when that was its only checkpoint.
func (s *Store) Abandon(id, name string) {
	if dir, err := s.dir(id, name); err == nil {
		criu.RemoveAll(dir)
		os.Remove(filepath.Dir(dir)) // only when empty
	}
}

// RemoveUnfinished removes the checkpoints that were never committed, such
// as those a daemon was writing when it died (a checkpoint is committed
// last, so one without its metadata file is unfinished), and the container
// directories they leave empty. It returns what it removed, as "id/name".
// It is for a daemon starting up: a checkpoint being taken right now is
// unfinished too, and it also unmounts whatever a killed CRIU left mounted
// in the store.
func (s *Store) RemoveUnfinished() ([]string, error) {
	ids, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	var removed []string
	var errs []error
	// A restore cut short by its daemon's death leaves CRIU's cgroup yard
	// mounted in a finished checkpoint's directory, which nothing would
	// then unmount: nothing else mounts below the store.
	if err := criu.Unmount(s.root); err != nil {
		errs = append(errs, fmt.Errorf("checkpoint store: %w", err))
	}
	for _, id := range ids {
		if !id.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, id.Name())
		names, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dir, n.Name(), metaFile)); err == nil {
				continue
			}
			// CRIU killed mid-dump can leave its cgroup yard mounted there.
			if err := criu.RemoveAll(filepath.Join(dir, n.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, id.Name()+"/"+n.Name())
		}
		os.Remove(dir) // only when empty
	}
	return removed, errors.Join(errs...)
}

// Get returns checkpoint id/name and the directory of its images.
func (s *Store) Get(id, name string) (Checkpoint, string, error) {
	dir, err := s.dir(id, name)
	if err != nil {
		return Checkpoint{}, "", err
	}
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Checkpoint{}, "", fmt.Errorf("checkpoint %s/%s: %w", id, name, errclass.NotFound)
		}
		return Checkpoint{}, "", fmt.Errorf("checkpoint %s/%s: %w", id, name, err)
	}
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, "", fmt.Errorf("checkpoint %s/%s: %s: %w", id, name, metaFile, err)
	}
	return c, filepath.Join(dir, "images"), nil
}

// List returns the finished checkpoints of container id, oldest first.
func (s *Store) List(id string) ([]Checkpoint, error) {
	if err := runtime.ValidID("container id", id); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, id))
	if errors.Is(err, os.ErrNotExist) {
		return []Checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints of %s: %w", id, err)
	}
	list := []Checkpoint{}
	for _, e := range entries {
		if c, _, err := s.Get(id, e.Name()); err == nil {
			list = append(list, c)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.Before(list[j].Created) })
	return list, nil
}

// Delete removes checkpoint id/name.
func (s *Store) Delete(id, name string) error {
	if _, _, err := s.Get(id, name); err != nil {
		return err
	}
	dir, _ := s.dir(id, name)
	if err := criu.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete checkpoint %s/%s: %w", id, name, err)
	}
	os.Remove(filepath.Join(s.root, id)) // only when it was the last one
	return nil
}
