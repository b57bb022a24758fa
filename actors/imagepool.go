package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/bundle"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
)

// A pool of an image prepares containers the way a cold start from the
// image makes them (a root of their own, a spec from the image and the
// overrides), but before their id is known: the root has a prepared name
// that the claim turns into the id (image.Store.ClaimRoot), and the host
// is named after the id at the claim (runtime.ClaimOptions) unless the
// overrides name it. The one difference a claimed container shows: no
// HOSTNAME in its environment, which is fixed when it is prepared.

// imagePoolKey is how pools of images are found by a start: the digest and
// the overrides, as their JSON (bundle pools' keys are absolute paths).
func imagePoolKey(digest string, o imagespec.Overrides) string {
	data, err := json.Marshal(o)
	if err != nil {
		// Plain data always marshals; a key nobody can match is safe.
		return "image " + digest + " !" + err.Error()
	}
	return "image " + digest + " " + string(data)
}

// SetImagePool creates warm pool name for containers started from an
// image with the overrides of m, or resizes it. The image is resolved (and
// pulled, as m.Pull says) here, off the pools actor, and one container's
// spec is made on a root of its own first: an image or overrides that
// cannot start is refused now rather than retried for ever.
func (s *Supervisor) SetImagePool(ctx context.Context, name string, m *ImageStart, size int) (p api.Pool, created bool, err error) {
	d := s.deps
	if d.images == nil {
		return api.Pool{}, false, errNoImages
	}
	img, err := d.resolveImage(ctx, m)
	if err != nil {
		return api.Pool{}, false, fmt.Errorf("pool %q: %w", name, err)
	}
	cfg, err := d.images.Store.Config(img)
	if err != nil {
		return api.Pool{}, false, fmt.Errorf("pool %q: %w", name, err)
	}
	ip := &ImagePool{Ref: m.Ref, Image: img, Config: cfg, Overrides: m.Overrides}
	if _, ok := d.pools.named(name); !ok {
		if err := d.tryImageSpec(ctx, ip); err != nil {
			return api.Pool{}, false, fmt.Errorf("pool %q: %w", name, err)
		}
	}
	r, err := ask[*SetPoolResult](s, ctx, s.pid, &SetPool{Name: name, Image: ip, Size: size})
	if err != nil {
		return api.Pool{}, false, err
	}
	return r.Pool, r.Created, r.Err
}

// tryImageSpec makes the spec of a container of pool ip on a root that it
// then removes.
func (d *deps) tryImageSpec(ctx context.Context, ip *ImagePool) error {
	st := d.images.Store
	name, err := image.PreparedRootName()
	if err != nil {
		return err
	}
	root, err := st.Mount(ctx, name, ip.Image)
	if err != nil {
		return err
	}
	_, err = d.images.Policy.GeneratePrepared(root, ip.Config, ip.Overrides)
	if uerr := st.Unmount(name); uerr != nil {
		err = errors.Join(err, uerr)
	}
	return err
}

// resolveImage is the image m names, pulled first as m.Pull says.
func (d *deps) resolveImage(ctx context.Context, m *ImageStart) (img image.Image, err error) {
	st := d.images.Store
	po := image.PullOptions{Credentials: m.Credentials}
	switch m.Pull {
	case api.PullAlways:
		img, err = st.PullWith(ctx, m.Ref, po)
	case api.PullMissing:
		if img, err = st.Get(m.Ref); errors.Is(err, errclass.NotFound) {
			img, err = st.PullWith(ctx, m.Ref, po)
		}
	case api.PullNever, "":
		img, err = st.Get(m.Ref)
	default:
		err = fmt.Errorf("pull policy %q: want never, missing or always: %w", m.Pull, errclass.InvalidArgument)
	}
	return img, err
}

// prepareImage prepares a container of pool ip.
func (d *deps) prepareImage(ctx context.Context, ip *ImagePool) (runtime.Prepared, error) {
	st := d.images.Store
	name, err := image.PreparedRootName()
	if err != nil {
		return nil, err
	}
	root, err := st.Mount(ctx, name, ip.Image)
	if err != nil {
		return nil, err
	}
	prep, err := func() (runtime.Prepared, error) {
		spec, err := d.images.Policy.GeneratePrepared(root, ip.Config, ip.Overrides)
		if err != nil {
			return nil, err
		}
		dir := st.BundleDir(name)
		if err := bundle.Write(dir, spec); err != nil {
			return nil, err
		}
		return d.preparer.Prepare(ctx, dir)
	}()
	if err != nil {
		if uerr := st.Unmount(name); uerr != nil {
			err = fmt.Errorf("%w; and its root stays: %v", err, uerr)
		}
		return nil, err
	}
	// Its init has pivoted into the root: the daemon's namespace lets go
	// of it (rootfs.Dir.Detach says why).
	if err := st.Detach(name); err != nil {
		d.logger.Warn("the root of a prepared container stays mounted in the daemon's namespace", "root", name, "err", err)
	}
	return &imagePrepared{Prepared: prep, store: st, root: name, nameHost: ip.Overrides.Hostname == ""}, nil
}

// imagePrepared is a prepared container of an image pool: the runtime's,
// with its root.
type imagePrepared struct {
	runtime.Prepared
	store    *image.Store
	root     string // the root's prepared name
	nameHost bool   // the host is named after the id at the claim
}

// Claim implements runtime.Prepared: the root takes the id first, so that
// a daemon dying in between finds a root without a container (and removes
// it) rather than a container without its root's name.
func (p *imagePrepared) Claim(ctx context.Context, id string, o runtime.ClaimOptions) (runtime.Container, error) {
	if err := p.store.ClaimRoot(p.root, id); err != nil {
		return nil, err
	}
	if p.nameHost && o.Hostname == "" {
		o.Hostname = imagespec.HostnameOf(id)
	}
	c, err := p.Prepared.Claim(ctx, id, o)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, errclass.AlreadyExists), errors.Is(err, errclass.InvalidArgument):
		// The prepared container is intact: so is its root.
		if uerr := p.store.UnclaimRoot(id, p.root); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
		return nil, err
	default:
		if uerr := p.store.Unmount(id); uerr != nil {
			err = fmt.Errorf("%w; and its root stays: %v", err, uerr)
		}
		return nil, err
	}
}

// Discard implements runtime.Prepared.
func (p *imagePrepared) Discard(ctx context.Context) error {
	err := p.Prepared.Discard(ctx)
	if uerr := p.store.Unmount(p.root); uerr != nil {
		err = errors.Join(err, uerr)
	}
	return err
}
