package actors

import (
	"context"
	"fmt"
	"io"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
)

// Images are the image store and the daemon's policy for the specs it
// makes from images; Config.Images, nil for a daemon without images.
type Images struct {
	Store  *image.Store
	Policy imagespec.Policy
}

// errNoImages answers image requests of a supervisor without a store.
var errNoImages = fmt.Errorf("this daemon has no image store: %w", errclass.Unavailable)

// The image store guards its own books (a lock held only for them, never
// for a pull or a mount), so the requests below go to it directly rather
// than through an actor's mailbox: a pull of a large image must hold up
// nothing else.

// PullImage pulls ref into the store, as o says (progress, credentials).
func (s *Supervisor) PullImage(ctx context.Context, ref string, o image.PullOptions) (api.Image, error) {
	st := s.deps.images
	if st == nil {
		return api.Image{}, errNoImages
	}
	img, err := st.Store.PullWith(ctx, ref, o)
	if err != nil {
		return api.Image{}, err
	}
	return imageInfo(st.Store, img), nil
}

// Images lists the images in the store.
func (s *Supervisor) Images() ([]api.Image, error) {
	st := s.deps.images
	if st == nil {
		return nil, errNoImages
	}
	list := st.Store.List()
	out := make([]api.Image, len(list))
	for i, img := range list {
		out[i] = imageInfo(st.Store, img)
	}
	return out, nil
}

// Image returns the image ref (a name or a digest) names.
func (s *Supervisor) Image(ref string) (api.Image, error) {
	st := s.deps.images
	if st == nil {
		return api.Image{}, errNoImages
	}
	img, err := st.Store.Get(ref)
	if err != nil {
		return api.Image{}, err
	}
	return imageInfo(st.Store, img), nil
}

// RemoveImage removes the name ref, or with a digest the image; an image
// that containers use is refused (FailedPrecondition) unless force.
func (s *Supervisor) RemoveImage(ref string, force bool) (api.Image, error) {
	st := s.deps.images
	if st == nil {
		return api.Image{}, errNoImages
	}
	img, err := st.Store.Remove(ref, force)
	if err != nil {
		return api.Image{}, err
	}
	return imageInfo(st.Store, img), nil
}

// ExportImage writes the image ref names to w as an OCI image layout in a
// tar archive.
func (s *Supervisor) ExportImage(ctx context.Context, ref string, w io.Writer) error {
	st := s.deps.images
	if st == nil {
		return errNoImages
	}
	return st.Store.Export(ctx, ref, w)
}

// ImportImages adds the images of an OCI image layout in a tar archive to
// the store and returns them.
func (s *Supervisor) ImportImages(ctx context.Context, r io.Reader) ([]api.Image, error) {
	st := s.deps.images
	if st == nil {
		return nil, errNoImages
	}
	imgs, err := st.Store.Import(ctx, r)
	out := make([]api.Image, len(imgs))
	for i, img := range imgs {
		out[i] = imageInfo(st.Store, img)
	}
	return out, err
}

// imageInfo is img on the wire.
func imageInfo(st *image.Store, img image.Image) api.Image {
	out := api.Image{Digest: img.Digest, Names: img.Names, Config: img.Config, MediaType: img.MediaType,
		Size: img.Size(), Pulled: img.Pulled, Containers: st.Users(img.Digest),
		Layers: make([]api.ImageLayer, len(img.Layers))}
	if out.Names == nil {
		out.Names = []string{}
	}
	for i, l := range img.Layers {
		out.Layers[i] = api.ImageLayer{Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, MediaType: l.MediaType}
	}
	return out
}
