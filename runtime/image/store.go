// Package image is troupe's image store: images pulled from registries,
// their layers unpacked once, and the root filesystems of the containers
// started from them. It puts together the packages below it:
//
//	<dir>/content/   blobs by digest, verified on the way in (package content)
//	<dir>/layers/    each layer unpacked once, by diffID (package layer)
//	<dir>/rootfs/    per container: an overlay of its image's layers (package rootfs)
//	<dir>/images.json  the images and their names
//
// An image is known by its manifest's digest and may have several names
// (references it was pulled as). Pull fetches what is missing, unpacks every
// layer, and only then records the image under its name: a recorded image
// can be mounted without the network. Remove drops a name, and an image
// without names goes with every blob and layer no other image uses.
//
// What a pull or an import brings in belongs to no image until it is
// recorded: each holds a lease on the blobs and layers it needs, which a
// removal meanwhile leaves be, and gives back at its end those no image
// came to use. A pull that fails half-way, or an archive that turns out
// bad, leaves nothing behind; a removal while a pull runs takes what only
// the removed image used, and nothing that pull needs.
//
// The store is safe for concurrent use. It never runs in a container's init:
// it links go-containerregistry, which the engine must not (its package
// inits would run in every start).
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image/content"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
	"github.com/troupe-run/troupe/runtime/image/layer"
	"github.com/troupe-run/troupe/runtime/image/pull"
	"github.com/troupe-run/troupe/runtime/image/rootfs"
)

// Image is an image in the store.
type Image struct {
	// Digest is the manifest's digest: the image's identity.
	Digest string `json:"digest"`
	// Names are the references it was pulled as, fully qualified
	// ("127.0.0.1:5000/app:1"), sorted.
	Names []string `json:"names"`
	// Index is the digest of the index the manifest was chosen from, if
	// it was pulled through one.
	Index string `json:"index,omitempty"`
	// MediaType is the manifest's.
	MediaType string `json:"mediaType"`
	// Config is the digest of the image's configuration.
	Config string `json:"config"`
	// Layers are the image's layers, bottom first.
	Layers []pull.Layer `json:"layers"`
	// Pulled is when it was last pulled.
	Pulled time.Time `json:"pulled"`
}

// Size is the compressed size of the image's layers.
func (img Image) Size() int64 {
	var n int64
	for _, l := range img.Layers {
		n += l.Size
	}
	return n
}

// Options configure a Store.
type Options struct {
	// Pull configures pulls; its Progress is ignored (Pull takes one).
	Pull pull.Options
	// Limits bound what unpacking a layer may write.
	Limits layer.Limits
}

// Store is the image store under one directory.
type Store struct {
	dir     string
	opts    Options
	content *content.Store
	layers  *layer.Store
	roots   *rootfs.Dir

	mu     sync.Mutex
	images map[string]*Image // by digest
	names  map[string]string // name -> digest
	// leases are the pulls, imports and mounts under way, each with the
	// blobs and layers it needs that no removal may take.
	leases map[*lease]bool
	// mounts are the images (digests) of the containers with a root here,
	// by container id: an image in use is not removed unless forced.
	mounts map[string]string
}

// imageFile, in a container's rootfs directory, names its image's digest,
// so that a daemon starting up knows which images are in use.
const imageFile = "image"

// Open opens (or makes) the store at dir.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{dir: dir, opts: o, images: map[string]*Image{}, names: map[string]string{}, mounts: map[string]string{},
		leases: map[*lease]bool{}}
	var err error
	if s.content, err = content.Open(filepath.Join(dir, "content")); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if s.layers, err = layer.OpenStore(filepath.Join(dir, "layers"), o.Limits); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if s.roots, err = rootfs.Open(filepath.Join(dir, "rootfs")); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	ids, err := s.roots.List()
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for _, id := range ids {
		// A root without its image file was being made when a daemon
		// died: it counts for no image, and its container's removal
		// takes it.
		d, _ := os.ReadFile(filepath.Join(filepath.Dir(s.roots.Path(id)), imageFile))
		s.mounts[id] = string(d)
	}
	return s, nil
}

func (s *Store) recordsPath() string { return filepath.Join(s.dir, "images.json") }

type records struct {
	Images []*Image `json:"images"`
}

func (s *Store) load() error {
	data, err := os.ReadFile(s.recordsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	var r records
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("image store: %s: %w", s.recordsPath(), err)
	}
	for _, img := range r.Images {
		s.images[img.Digest] = img
		for _, n := range img.Names {
			s.names[n] = img.Digest
		}
	}
	return nil
}

// save writes the records, s.mu held: a new file renamed over the old one,
// so that a crash leaves one or the other.
func (s *Store) save() error {
	r := records{Images: slices.SortedFunc(maps.Values(s.images), func(a, b *Image) int {
		return strings.Compare(a.Digest, b.Digest)
	})}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	tmp := s.recordsPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.recordsPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// Normalize returns the fully qualified name of a reference
// ("busybox" is "index.docker.io/library/busybox:latest"), or an
// InvalidArgument error.
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %v: %w", ref, err, errclass.InvalidArgument)
	}
	return r.Name(), nil
}

// Pull pulls ref, unpacks its layers and records the image under ref's
// name. progress, if not nil, hears of each layer's bytes.
func (s *Store) Pull(ctx context.Context, ref string, progress func(pull.Progress)) (Image, error) {
	return s.PullWith(ctx, ref, PullOptions{Progress: progress})
}

// PullOptions are what one pull may add to the store's options.
type PullOptions struct {
	// Progress, if not nil, hears of each layer's bytes.
	Progress func(pull.Progress)
	// Credentials, when set, are the pull's for the reference's registry,
	// instead of the store's auth config: used, never stored.
	Credentials *pull.Credentials
}

// PullWith is Pull with more options.
func (s *Store) PullWith(ctx context.Context, ref string, po PullOptions) (Image, error) {
	qualified, err := Normalize(ref)
	if err != nil {
		return Image{}, err
	}
	l := s.lease()
	defer s.release(l, "")
	o := s.opts.Pull
	o.Progress, o.Credentials = po.Progress, po.Credentials
	o.Hold = func(digests ...string) { s.hold(l, digests...) }
	res, err := pull.New(s.content, o).Pull(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	img := Image{Digest: res.ManifestDigest, Index: res.IndexDigest, MediaType: res.MediaType,
		Config: res.ConfigDigest, Layers: res.Layers, Pulled: time.Now().UTC()}
	if _, err := s.unpack(ctx, img); err != nil {
		return Image{}, err
	}
	return s.record(img, []string{qualified})
}

// lease is what one pull, import or mount needs of the store: digests of
// blobs, and diffIDs of layers, in one set (a digest names the same bytes
// in either role, and holding one too many only keeps it a little longer).
type lease struct {
	digests map[string]bool
}

// lease starts a lease holding digests, which release ends.
func (s *Store) lease(digests ...string) *lease {
	l := &lease{digests: make(map[string]bool, len(digests))}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[l] = true
	for _, d := range digests {
		if d != "" {
			l.digests[d] = true
		}
	}
	return l
}

// hold adds digests to l. It comes before the holder looks for them in
// the store: a removal either took them before, and the holder finds them
// missing, or leaves them.
func (s *Store) hold(l *lease, digests ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range digests {
		if d != "" {
			l.digests[d] = true
		}
	}
}

// release ends l and deletes what it held that no recorded image and no
// other lease uses: all that a failed pull brought, the blobs of an
// archive that no image of this platform needs. A lease that held only
// the layers of the image digest skips that while the image is recorded
// (they are all in use): the sweep's cost stays off every start. A
// failure to delete is logged by no one: what stays is unused, and the
// next removal that comes across it tries again.
func (s *Store) release(l *lease, digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases, l)
	if _, recorded := s.images[digest]; recorded {
		return
	}
	held := slices.Sorted(maps.Keys(l.digests))
	_ = s.sweep(held, held)
}

// record adds img, unpacked, to the books under names. A name given by
// digest (repo@sha256:...) names that digest for good; a tag moves to the
// image it names now.
func (s *Store) record(img Image, names []string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if old, ok := s.names[n]; ok && old != img.Digest {
			s.dropName(n)
		}
	}
	if have, ok := s.images[img.Digest]; ok {
		img.Names = have.Names
	}
	for _, n := range names {
		if !slices.Contains(img.Names, n) {
			img.Names = append(slices.Clone(img.Names), n)
		}
		s.names[n] = img.Digest
	}
	slices.Sort(img.Names)
	s.images[img.Digest] = &img
	if err := s.save(); err != nil {
		return Image{}, err
	}
	return img, nil
}

// unpack makes sure every layer of img is unpacked and returns their
// directories, bottom first.
func (s *Store) unpack(ctx context.Context, img Image) ([]string, error) {
	dirs := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		open := func() (io.ReadCloser, error) {
			blob, err := s.content.Open(l.Digest)
			if err != nil {
				return nil, err
			}
			r, err := layer.Decompress(blob)
			if err != nil {
				blob.Close()
				return nil, err
			}
			return readCloser{r, func() error { return errors.Join(r.Close(), blob.Close()) }}, nil
		}
		dir, err := s.layers.Ensure(ctx, l.DiffID, open)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", img.Digest, l.Digest, err)
		}
		dirs[i] = dir
	}
	return dirs, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// Get returns the image a name or a digest ("sha256:...") refers to. A
// reference by digest ("repo@sha256:...") that is not one of its names
// finds the image too when one of its names is in that repository, as it
// does in docker: the digest says which content, the repository where
// it came from.
func (s *Store) Get(ref string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(ref)
	if errors.Is(err, errclass.NotFound) {
		if found := s.lookupDigestRef(ref); found != nil {
			return *found, nil
		}
	}
	if err != nil {
		return Image{}, err
	}
	return *img, nil
}

// lookup finds ref, s.mu held.
func (s *Store) lookup(ref string) (*Image, error) {
	if img, ok := s.images[ref]; ok {
		return img, nil
	}
	qualified, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	if d, ok := s.names[qualified]; ok {
		return s.images[d], nil
	}
	return nil, fmt.Errorf("image %q: %w", ref, errclass.NotFound)
}

// lookupDigestRef finds the image of a reference by digest through the
// repositories of its names, s.mu held; nil if there is none.
func (s *Store) lookupDigestRef(ref string) *Image {
	d, err := name.NewDigest(ref)
	if err != nil {
		return nil
	}
	img, ok := s.images[d.DigestStr()]
	if !ok {
		return nil
	}
	for _, n := range img.Names {
		if r, err := name.ParseReference(n); err == nil && r.Context().Name() == d.Context().Name() {
			return img
		}
	}
	return nil
}

// DigestReference is the reference by digest ("repo@sha256:...") of the
// image digest in the repository of the reference ref: what pulls that
// exact image again wherever ref came from.
func DigestReference(ref, digest string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %v: %w", ref, err, errclass.InvalidArgument)
	}
	if err := content.ValidateDigest(digest); err != nil {
		return "", err
	}
	return r.Context().Digest(digest).Name(), nil
}

// List returns every image, by digest.
func (s *Store) List() []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, *img)
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Digest, b.Digest) })
	return out
}

// Config returns the image's configuration, as a container's spec is made
// from it.
func (s *Store) Config(img Image) (imagespec.Image, error) {
	blob, err := s.content.Open(img.Config)
	if err != nil {
		return imagespec.Image{}, fmt.Errorf("image %s: config: %w", img.Digest, err)
	}
	defer blob.Close()
	// ParseImage refuses configurations over its own limit; read one byte
	// more than that so that it can say so.
	data, err := io.ReadAll(io.LimitReader(blob, imagespec.MaxConfigSize+1))
	if err != nil {
		return imagespec.Image{}, fmt.Errorf("image %s: config: %w", img.Digest, err)
	}
	return imagespec.ParseImage(data)
}

// Remove removes a name, or with a digest the image and all its names.
// An image left without names is deleted, with the blobs and layers no
// other image uses. Removing an image that containers use is
// FailedPrecondition unless force; forced, their roots stay mounted (and
// readable) until they go.
func (s *Store) Remove(ref string, force bool) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(ref)
	if err != nil {
		return Image{}, err
	}
	removed := *img
	byDigest := ref == img.Digest
	if byDigest || len(img.Names) <= 1 {
		if n := s.users(img.Digest); n > 0 && !force {
			return Image{}, fmt.Errorf("image %s is used by %d containers (remove them first, or force): %w",
				ref, n, errclass.FailedPrecondition)
		}
		for _, n := range img.Names {
			delete(s.names, n)
		}
		delete(s.images, img.Digest)
	} else {
		qualified, _ := Normalize(ref)
		s.dropName(qualified)
	}
	if err := s.save(); err != nil {
		return Image{}, err
	}
	if _, still := s.images[removed.Digest]; !still {
		if err := s.collect(removed); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// MountedImage is the digest of the image whose root container id has
// here, or "".
func (s *Store) MountedImage(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mounts[id]
}

// Users is how many containers have a root made from the image digest.
func (s *Store) Users(digest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users(digest)
}

func (s *Store) users(digest string) int {
	n := 0
	for _, d := range s.mounts {
		if d == digest {
			n++
		}
	}
	return n
}

// dropName removes a name from its image, s.mu held; the image stays,
// even without names, until Remove.
func (s *Store) dropName(qualified string) {
	d, ok := s.names[qualified]
	if !ok {
		return
	}
	delete(s.names, qualified)
	if img := s.images[d]; img != nil {
		img.Names = slices.DeleteFunc(slices.Clone(img.Names), func(n string) bool { return n == qualified })
	}
}

// collect deletes gone's blobs and layers that no image still recorded
// uses, s.mu held. A layer still mounted by a container (forced removal)
// stays until that container's root is removed: overlayfs keeps its own
// reference to a lower directory, and its files stay readable.
func (s *Store) collect(gone Image) error {
	blobs := []string{gone.Digest, gone.Index, gone.Config}
	diffIDs := make([]string, 0, len(gone.Layers))
	for _, l := range gone.Layers {
		blobs = append(blobs, l.Digest)
		diffIDs = append(diffIDs, l.DiffID)
	}
	return s.sweep(blobs, diffIDs)
}

// sweep deletes the blobs and layers (by diffID) named that no recorded
// image uses and no lease holds, s.mu held; those not there are no error.
func (s *Store) sweep(blobs, diffIDs []string) error {
	usedBlobs, usedLayers := map[string]bool{}, map[string]bool{}
	for _, img := range s.images {
		for _, d := range []string{img.Digest, img.Index, img.Config} {
			usedBlobs[d] = true
		}
		for _, l := range img.Layers {
			usedBlobs[l.Digest], usedLayers[l.DiffID] = true, true
		}
	}
	for l := range s.leases {
		for d := range l.digests {
			usedBlobs[d], usedLayers[d] = true, true
		}
	}
	var errs []error
	for _, d := range diffIDs {
		if d == "" || usedLayers[d] {
			continue
		}
		// FailedPrecondition: a mount of an image removed by force is
		// unpacking it again; that mount's lease takes it back.
		if err := s.layers.Remove(d); err != nil && !errors.Is(err, errclass.NotFound) && !errors.Is(err, errclass.FailedPrecondition) {
			errs = append(errs, err)
		}
	}
	for _, d := range blobs {
		if d == "" || usedBlobs[d] {
			continue
		}
		if err := s.content.Delete(d); err != nil && !errors.Is(err, errclass.NotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Mount makes the root filesystem of container id from img: an overlay of
// its layers (unpacked again if a forced removal took them) under a
// writable directory of the container's own. It returns its path. The
// store's lock is held only for its books, not for the mount: starts from
// one image mount in parallel.
func (s *Store) Mount(ctx context.Context, id string, img Image) (string, error) {
	return s.MountWith(ctx, id, img, nil)
}

// MountWith is Mount with the upper directory filled from diff (a tar
// stream Diff wrote), if not nil: a container restored from a checkpoint
// gets back what it had changed of its image. diff may come from another
// machine: it is unpacked with the same care as an image's layer.
func (s *Store) MountWith(ctx context.Context, id string, img Image, diff io.Reader) (string, error) {
	// The image may be removed while its layers are made again (a forced
	// removal took them): the lease keeps them until the mount is done,
	// and then, the image gone, takes them back.
	diffIDs := make([]string, len(img.Layers))
	for i, ly := range img.Layers {
		diffIDs[i] = ly.DiffID
	}
	l := s.lease(diffIDs...)
	defer s.release(l, img.Digest)
	lowers, err := s.unpack(ctx, img)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if _, ok := s.mounts[id]; ok {
		s.mu.Unlock()
		return "", fmt.Errorf("rootfs of %s: %w", id, errclass.AlreadyExists)
	}
	if _, ok := s.images[img.Digest]; !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("image %s was removed: %w", img.Digest, errclass.NotFound)
	}
	s.mounts[id] = img.Digest
	s.mu.Unlock()
	var fill func(string) error
	if diff != nil {
		fill = func(upper string) error {
			// Unpack wants a directory that is not there yet.
			if err := os.Remove(upper); err != nil {
				return err
			}
			_, err := layer.Unpack(ctx, diff, upper, s.opts.Limits)
			return err
		}
	}
	root, err := s.roots.CreateWith(id, lowers, fill)
	if err == nil {
		err = os.WriteFile(filepath.Join(filepath.Dir(root), imageFile), []byte(img.Digest), 0o600)
		if err != nil {
			_ = s.roots.Remove(id)
		}
	}
	if err != nil {
		s.mu.Lock()
		delete(s.mounts, id)
		s.mu.Unlock()
		return "", err
	}
	return root, nil
}

// PreparedRootName returns a name for the root of a container made
// before its id is known (a warm pool's): Mount it under that name, and
// ClaimRoot gives it the id.
func PreparedRootName() (string, error) { return rootfs.PreparedName() }

// ClaimRoot gives the root mounted as prepared (a PreparedRootName) to
// container id. errclass.AlreadyExists when id has a root already.
func (s *Store) ClaimRoot(prepared, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	digest, ok := s.mounts[prepared]
	if !ok {
		return fmt.Errorf("rootfs of %s: %w", prepared, errclass.NotFound)
	}
	if _, ok := s.mounts[id]; ok {
		return fmt.Errorf("rootfs of %s: %w", id, errclass.AlreadyExists)
	}
	if err := s.roots.Claim(prepared, id); err != nil {
		return err
	}
	delete(s.mounts, prepared)
	s.mounts[id] = digest
	return nil
}

// UnclaimRoot undoes ClaimRoot, for a claim of the container that failed.
func (s *Store) UnclaimRoot(id, prepared string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.roots.Unclaim(id); err != nil {
		return err
	}
	s.mounts[prepared] = s.mounts[id]
	delete(s.mounts, id)
	return nil
}

// Detach takes the root of container id, once the container runs in it,
// out of this mount namespace (rootfs.Dir.Detach): the container keeps it.
func (s *Store) Detach(id string) error { return s.roots.Detach(id) }

// RootPath is where Mount puts the root filesystem of container id.
func (s *Store) RootPath(id string) string { return s.roots.Path(id) }

// Diff writes what container id changed of its image (its upper
// directory) to w as a layer tar stream, for MountWith to give back. The
// container must be stopped or frozen.
func (s *Store) Diff(ctx context.Context, id string, w io.Writer) error {
	s.mu.Lock()
	_, ok := s.mounts[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("rootfs of %s: %w", id, errclass.NotFound)
	}
	return layer.Diff(ctx, s.roots.UpperDir(id), w)
}

// BundleDir is where the bundle of container id, whose root Mount made,
// may be written: inside the container's directory, so that Unmount
// removes it with the root.
func (s *Store) BundleDir(id string) string {
	return filepath.Join(filepath.Dir(s.roots.Path(id)), "bundle")
}

// Unmount removes the root filesystem of container id (and its bundle
// directory); one that is not there is no error.
func (s *Store) Unmount(id string) error {
	if err := s.roots.Remove(id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.mounts, id)
	s.mu.Unlock()
	return nil
}

// Mounted returns the ids of the containers that have a root filesystem
// here, for a daemon starting up to remove those whose container is gone.
func (s *Store) Mounted() ([]string, error) { return s.roots.List() }
