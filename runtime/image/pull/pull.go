package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image/content"
)

const (
	// DefaultIdleTimeout is how long a request may wait for the registry's
	// next byte (a connection, the response's headers, more of a body).
	DefaultIdleTimeout = 30 * time.Second
	// progressEvery is the least time between two progress reports of one
	// layer (its last report comes at once).
	progressEvery = 100 * time.Millisecond
	// parallelLayers is how many layers download at once.
	parallelLayers = 3
)

// Options configures a Puller.
type Options struct {
	// AuthConfig is the path of a docker-style config.json whose "auths"
	// give credentials per registry. Empty, missing or without an entry for
	// the registry: the pull is anonymous.
	AuthConfig string
	// InsecureRegistries may be reached over plain HTTP, each "host" (any
	// port) or "host:port". Loopback registries always may; every other
	// registry only over HTTPS.
	InsecureRegistries []string
	// Platform is the platform chosen from image indexes; zero means
	// HostPlatform().
	Platform Platform
	// Progress, if set, is called with each layer's progress: at most every
	// 100ms per layer and once when it is complete. Calls are serialised.
	Progress func(Progress)
	// IdleTimeout bounds each wait for the registry; zero means
	// DefaultIdleTimeout. The whole pull is bounded by its ctx.
	IdleTimeout time.Duration
	// Credentials, when set, are this pull's for the reference's
	// registry, instead of what AuthConfig holds for it (a Kubernetes
	// pod's imagePullSecrets). They are used, never stored.
	Credentials *Credentials
	// Hold, if set, is called with the digests of blobs, and of layers'
	// diffIDs, before the pull looks for them in the store or fetches
	// them: whoever removes blobs and layers from the store leaves those
	// be until the pull is over, so that what it found there is still
	// there when it is recorded. It may be called from several goroutines
	// at once.
	Hold func(digests ...string)
}

// Progress is how far one layer has come.
type Progress struct {
	Digest      string
	Total, Done int64
}

// Result is what a pull stored: every digest named here is in the store.
type Result struct {
	// Reference is the pulled reference, fully qualified.
	Reference string
	// IndexDigest is the index the reference named, if it named one.
	IndexDigest string
	// ManifestDigest is the image manifest for this platform.
	ManifestDigest string
	// MediaType is the manifest's media type (OCI or Docker schema 2).
	MediaType string
	// ConfigDigest is the image configuration.
	ConfigDigest string
	// Layers are the image's layers, base first.
	Layers []Layer
}

// Layer is one layer of a pulled image.
type Layer struct {
	// Digest is the digest of the blob as stored (compressed or not).
	Digest string
	// DiffID is the digest of the uncompressed tar, from the config's
	// rootfs.diff_ids: what unpacking must produce.
	DiffID    string
	Size      int64
	MediaType string
}

// Puller pulls images from registries into a content store. It is safe for
// concurrent use.
type Puller struct {
	store     *content.Store
	opts      Options
	transport http.RoundTripper
	keychain  fileKeychain
}

// New returns a Puller that stores into store.
func New(store *content.Store, opts Options) *Puller {
	return newPuller(store, opts, nil)
}

func newPuller(store *content.Store, opts Options, dial dialFunc) *Puller {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Platform == (Platform{}) {
		opts.Platform = HostPlatform()
	}
	if opts.Hold == nil {
		opts.Hold = func(...string) {}
	}
	insecure := opts.InsecureRegistries
	return &Puller{
		store:     store,
		opts:      opts,
		transport: newTransport(opts.IdleTimeout, func(h string) bool { return plainHTTPAllowed(h, insecure) }, dial),
		keychain:  fileKeychain{path: opts.AuthConfig},
	}
}

// Pull resolves reference (name:tag or name@sha256:...) to the image for
// the Puller's platform and stores its index (if any), manifest, config and
// layers, each verified by digest. The manifest is stored last, so a stored
// manifest's blobs are all there. Errors carry a class: InvalidArgument
// for a bad reference, refused plain HTTP or content that is not what it
// claims, NotFound for a missing image or platform, FailedPrecondition for
// denied access, Unavailable for a registry that fails or does not answer.
func (p *Puller) Pull(ctx context.Context, reference string) (*Result, error) {
	res, err := p.pull(ctx, reference)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", reference, classify(err))
	}
	return res, nil
}

func (p *Puller) pull(ctx context.Context, reference string) (*Result, error) {
	ref, err := p.parse(reference)
	if err != nil {
		return nil, err
	}
	auth := remote.WithAuthFromKeychain(p.keychain)
	if c := p.opts.Credentials; c != nil {
		auth = remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password,
			IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}))
	}
	gp, err := remote.NewPuller(
		remote.WithContext(ctx),
		remote.WithTransport(p.transport),
		auth,
		remote.WithUserAgent("troupe"),
	)
	if err != nil {
		return nil, err
	}
	desc, err := gp.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	res := &Result{Reference: ref.Name()}
	p.opts.Hold(desc.Digest.String())
	var index *remote.Descriptor
	if desc.MediaType.IsIndex() {
		index = desc
		idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("index %s: %w", desc.Digest, err))
		}
		chosen, err := choose(idx, p.opts.Platform, ref.Name())
		if err != nil {
			return nil, err
		}
		res.IndexDigest = desc.Digest.String()
		p.opts.Hold(chosen.Digest.String())
		// Asked for by digest: ggcr checks that what comes is what the
		// index named, and Ingest checks it again.
		if desc, err = gp.Get(ctx, ref.Context().Digest(chosen.Digest.String())); err != nil {
			return nil, err
		}
	}
	m, err := imageManifest(desc.Digest.String(), desc.MediaType, desc.Manifest)
	if err != nil {
		return nil, err
	}
	res.ManifestDigest, res.MediaType, res.ConfigDigest = desc.Digest.String(), string(desc.MediaType), m.Config.Digest.String()
	p.opts.Hold(res.ConfigDigest)
	if err := p.fetch(ctx, gp, ref, m.Config, nil); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if res.Layers, err = p.layers(res.ManifestDigest, m); err != nil {
		return nil, err
	}
	for _, l := range res.Layers {
		p.opts.Hold(l.Digest, l.DiffID)
	}
	if err := p.fetchLayers(ctx, gp, ref, m.Layers); err != nil {
		return nil, err
	}

	if err := p.store.Ingest(ctx, desc.Digest.String(), desc.Size, bytes.NewReader(desc.Manifest)); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if index != nil {
		if err := p.store.Ingest(ctx, index.Digest.String(), index.Size, bytes.NewReader(index.Manifest)); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
	}
	return res, nil
}

// parse parses a reference, marking its registry insecure (ggcr then tries
// plain HTTP after HTTPS) when plain HTTP to it is allowed.
func (p *Puller) parse(reference string) (name.Reference, error) {
	ref, err := name.ParseReference(reference, name.StrictValidation)
	if err != nil {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("invalid reference: %w", err))
	}
	if plainHTTPAllowed(ref.Context().RegistryStr(), p.opts.InsecureRegistries) {
		ref, err = name.ParseReference(reference, name.StrictValidation, name.Insecure)
	}
	if err != nil {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("invalid reference: %w", err))
	}
	return ref, nil
}

// checkMediaTypes refuses what troupe cannot run: a config that is not an
// image's, and layers that are not plain tars (gzip, zstd or none).
// Foreign and non-distributable layers are refused rather than skipped:
// their content lives elsewhere, and an image without them is another image.
func checkMediaTypes(m *v1.Manifest) error {
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return errclass.With(errclass.InvalidArgument, fmt.Errorf("config %s has media type %q, not an image configuration", m.Config.Digest, m.Config.MediaType))
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer:
		case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
			return errclass.With(errclass.InvalidArgument, fmt.Errorf("layer %s is foreign or non-distributable (%s): not supported", l.Digest, l.MediaType))
		default:
			return errclass.With(errclass.InvalidArgument, fmt.Errorf("layer %s has unknown media type %q", l.Digest, l.MediaType))
		}
		if err := content.ValidateDigest(l.Digest.String()); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	}
	return content.ValidateDigest(m.Config.Digest.String())
}

// imageManifest parses the manifest data (of media type mt) at digest, if
// it is an image troupe can run.
func imageManifest(digest string, mt types.MediaType, data []byte) (*v1.Manifest, error) {
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s is Docker schema 1, which is not supported: push the image again with a current client", digest))
	default:
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s has media type %q, not an image", digest, mt))
	}
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s: %w", digest, err))
	}
	if err := checkMediaTypes(m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	return m, nil
}

// layers pairs the layers of manifest m (at digest) with the diff_ids of
// its config, which must be in the store.
func (p *Puller) layers(digest string, m *v1.Manifest) ([]Layer, error) {
	config := m.Config.Digest.String()
	diffIDs, err := p.diffIDs(config)
	if err != nil {
		return nil, err
	}
	if len(diffIDs) != len(m.Layers) {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s has %d layers, its config %s %d diff_ids", digest, len(m.Layers), config, len(diffIDs)))
	}
	layers := make([]Layer, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = Layer{Digest: l.Digest.String(), DiffID: diffIDs[i], Size: l.Size, MediaType: string(l.MediaType)}
	}
	return layers, nil
}

// diffIDs reads rootfs.diff_ids from a stored config.
func (p *Puller) diffIDs(config string) ([]string, error) {
	rc, err := p.store.Open(config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer rc.Close()
	var c struct {
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.NewDecoder(rc).Decode(&c); err != nil {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("config %s: %w", config, err))
	}
	if c.RootFS.Type != "layers" {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("config %s: rootfs type %q, want \"layers\"", config, c.RootFS.Type))
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := content.ValidateDigest(d); err != nil {
			return nil, fmt.Errorf("config %s: diff_id: %w", config, err)
		}
	}
	return c.RootFS.DiffIDs, nil
}

// fetchLayers fetches the layers, parallelLayers at a time, and returns
// the first error (the others are cancelled).
func (p *Puller) fetchLayers(ctx context.Context, gp *remote.Puller, ref name.Reference, layers []v1.Descriptor) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		once    sync.Once
		first   error
		sem     = make(chan struct{}, parallelLayers)
		reports sync.Mutex // serialises Progress calls
	)
	for _, l := range layers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.fetch(ctx, gp, ref, l, &reports); err != nil {
				once.Do(func() { first = fmt.Errorf("layer %s: %w", l.Digest, err) })
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// fetch stores blob d unless it is there; reports, when not nil, serialises
// progress reports for it.
func (p *Puller) fetch(ctx context.Context, gp *remote.Puller, ref name.Reference, d v1.Descriptor, reports *sync.Mutex) error {
	dgst := d.Digest.String()
	report := func(done int64) {}
	if reports != nil && p.opts.Progress != nil {
		report = func(done int64) {
			reports.Lock()
			defer reports.Unlock()
			p.opts.Progress(Progress{Digest: dgst, Total: d.Size, Done: done})
		}
	}
	if _, err := p.store.Info(dgst); err == nil {
		report(d.Size)
		return nil
	}
	blob, err := gp.Layer(ctx, ref.Context().Digest(dgst))
	if err != nil {
		return err
	}
	rc, err := blob.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	pr := &progressReader{r: rc, report: report}
	if err := p.store.Ingest(ctx, dgst, d.Size, pr); err != nil {
		return err
	}
	report(d.Size)
	return nil
}

// progressReader counts what is read and reports it at most every
// progressEvery.
type progressReader struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(done int64)
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	if now := time.Now(); n > 0 && now.Sub(pr.last) >= progressEvery {
		pr.last = now
		pr.report(pr.n)
	}
	return n, err
}

// classify gives an error from ggcr or the network a class, keeping one it
// has.
func classify(err error) error {
	for _, c := range []error{errclass.NotFound, errclass.AlreadyExists, errclass.InvalidArgument, errclass.FailedPrecondition, errclass.Unavailable} {
		if errors.Is(err, c) {
			return err
		}
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return errclass.With(errclass.NotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return errclass.With(errclass.FailedPrecondition, err)
		}
	}
	return errclass.With(errclass.Unavailable, err)
}
