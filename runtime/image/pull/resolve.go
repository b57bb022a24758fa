package pull

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image/content"
)

// maxManifestSize bounds a manifest or index read from the store: real
// ones are a few KiB.
const maxManifestSize = 4 << 20

// Resolve is what a pull finds, for an image whose blobs are already in
// the store (imported from an OCI layout rather than pulled): the manifest
// or index at digest, an index resolved for platform, checked as a pull
// checks it, every blob it names present.
func Resolve(store *content.Store, digest string, platform Platform) (*Result, error) {
	res := &Result{Reference: digest}
	data, mt, err := readManifest(store, digest)
	if err != nil {
		return nil, err
	}
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
		if err != nil {
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("index %s: %w", digest, err))
		}
		chosen, err := choose(idx, platform, digest)
		if err != nil {
			return nil, err
		}
		res.IndexDigest = digest
		digest = chosen.Digest.String()
		if data, mt, err = readManifest(store, digest); err != nil {
			return nil, err
		}
	}
	m, err := imageManifest(digest, mt, data)
	if err != nil {
		return nil, err
	}
	res.ManifestDigest, res.MediaType, res.ConfigDigest = digest, string(mt), m.Config.Digest.String()
	if res.Layers, err = (&Puller{store: store}).layers(digest, m); err != nil {
		return nil, err
	}
	for _, l := range res.Layers {
		if _, err := store.Info(l.Digest); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %s: %w", digest, l.Digest, err)
		}
	}
	return res, nil
}

// readManifest reads a manifest or index from the store, with its media
// type (from its own mediaType field: a layout's index says it too, but
// the blob is what was verified).
func readManifest(store *content.Store, digest string) ([]byte, types.MediaType, error) {
	rc, err := store.Open(digest)
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", digest, err)
	}
	if len(data) > maxManifestSize {
		return nil, "", errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s: more than %d bytes", digest, maxManifestSize))
	}
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, "", errclass.With(errclass.InvalidArgument, fmt.Errorf("manifest %s: %w", digest, err))
	}
	// OCI makes the field optional: what the document holds says it.
	switch {
	case head.MediaType != "":
	case head.Manifests != nil:
		head.MediaType = types.OCIImageIndex
	case head.Config != nil:
		head.MediaType = types.OCIManifestSchema1
	}
	return data, head.MediaType, nil
}
