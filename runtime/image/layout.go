package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image/content"
	"github.com/troupe-run/troupe/runtime/image/pull"
)

// The annotations of an OCI layout's index that name an image: containerd
// (and so nerdctl) write the full reference in the first, skopeo and
// podman the tag alone in the second.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// maxIndexSize bounds a layout's index.json.
const maxIndexSize = 1 << 20

type layoutIndex struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Manifests     []layoutDescriptor `json:"manifests"`
}

type layoutDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Export writes the image ref names to w as an OCI image layout in a tar
// archive (oci-layout, index.json, blobs/sha256/...), which skopeo, podman
// and containerd import, and Import reads back on another machine.
func (s *Store) Export(ctx context.Context, ref string, w io.Writer) error {
	img, err := s.Get(ref)
	if err != nil {
		return err
	}
	top := img.Digest
	if img.Index != "" {
		// The whole index travels, so that the other side resolves its
		// platform itself; only this platform's image is in the archive.
		top = img.Index
	}
	info, err := s.content.Info(top)
	if err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	mt := img.MediaType
	if top == img.Index {
		mt = "application/vnd.oci.image.index.v1+json"
	}
	desc := layoutDescriptor{MediaType: mt, Digest: top, Size: info.Size, Annotations: map[string]string{}}
	if qualified, err := Normalize(ref); err == nil && ref != img.Digest {
		desc.Annotations[annotationImageName] = qualified
		if tag, err := name.NewTag(qualified); err == nil {
			desc.Annotations[annotationRefName] = tag.TagStr()
		}
	}
	index, err := json.Marshal(layoutIndex{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json",
		Manifests: []layoutDescriptor{desc}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	now := time.Now()
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	if err := file("index.json", index); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	blobs := []string{img.Index, img.Digest, img.Config}
	for _, l := range img.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range slices.Compact(blobs) {
		if d == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.exportBlob(tw, d, now); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	return nil
}

func (s *Store) exportBlob(tw *tar.Writer, digest string, now time.Time) error {
	info, err := s.content.Info(digest)
	if err != nil {
		return err
	}
	rc, err := s.content.Open(digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	hex := strings.TrimPrefix(digest, "sha256:")
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + hex, Mode: 0o644, Size: info.Size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, rc, info.Size)
	return err
}

// Import reads an OCI image layout in a tar archive (as Export, skopeo
// copy oci-archive: or podman save --format oci-archive write it) and adds
// its images to the store: every blob verified by its digest on the way in,
// each image resolved for this machine's platform, its layers unpacked, and
// named as the layout's index names it (a full reference; a bare tag names
// nothing, and the image is then known by its digest). It returns the
// images added. Anything in the archive but the layout's own files is
// refused: the archive may come from anywhere.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]Image, error) {
	// Its blobs are in before its images are recorded; what no image of
	// this platform came to use goes at the end, whether or not the
	// archive was good.
	l := s.lease()
	defer s.release(l, "")
	index, err := s.ingestLayout(ctx, r, l)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var added []Image
	for _, d := range index.Manifests {
		res, err := pull.Resolve(s.content, d.Digest, s.platform())
		if err != nil {
			return added, fmt.Errorf("import: %w", err)
		}
		img := Image{Digest: res.ManifestDigest, Index: res.IndexDigest, MediaType: res.MediaType,
			Config: res.ConfigDigest, Layers: res.Layers, Pulled: time.Now().UTC()}
		for _, ly := range img.Layers {
			s.hold(l, ly.DiffID)
		}
		if _, err := s.unpack(ctx, img); err != nil {
			return added, fmt.Errorf("import: %w", err)
		}
		var names []string
		if n := layoutName(d.Annotations); n != "" {
			qualified, err := Normalize(n)
			if err != nil {
				return added, fmt.Errorf("import: %w", err)
			}
			names = append(names, qualified)
		}
		if img, err = s.record(img, names); err != nil {
			return added, fmt.Errorf("import: %w", err)
		}
		added = append(added, img)
	}
	return added, nil
}

// layoutName is the reference a layout's index gives an image: containerd's
// annotation, or the OCI one when it holds a reference with a repository
// (skopeo writes what its caller named) rather than a bare tag.
func layoutName(annotations map[string]string) string {
	if n := annotations[annotationImageName]; n != "" {
		return n
	}
	if n := annotations[annotationRefName]; strings.Contains(n, "/") {
		return n
	}
	return ""
}

func (s *Store) platform() pull.Platform {
	if s.opts.Pull.Platform != (pull.Platform{}) {
		return s.opts.Pull.Platform
	}
	return pull.HostPlatform()
}

// ingestLayout puts every blob of the archive into the content store and
// returns its index.
func (s *Store) ingestLayout(ctx context.Context, r io.Reader, l *lease) (*layoutIndex, error) {
	tr := tar.NewReader(r)
	var index *layoutIndex
	sawLayout := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("read archive: %w", err))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clean := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch {
		case h.Typeflag == tar.TypeDir && (clean == "." || clean == "blobs" || clean == "blobs/sha256"):
		case h.Typeflag != tar.TypeReg:
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("archive entry %q: not a regular file", h.Name))
		case clean == "oci-layout":
			sawLayout = true
		case clean == "index.json":
			if h.Size > maxIndexSize {
				return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("index.json: %d bytes, more than %d", h.Size, maxIndexSize))
			}
			index = &layoutIndex{}
			if err := json.NewDecoder(io.LimitReader(tr, maxIndexSize)).Decode(index); err != nil {
				return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("index.json: %w", err))
			}
		case strings.HasPrefix(clean, "blobs/sha256/"):
			digest := "sha256:" + strings.TrimPrefix(clean, "blobs/sha256/")
			if err := content.ValidateDigest(digest); err != nil {
				return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
			}
			s.hold(l, digest)
			if err := s.content.Ingest(ctx, digest, h.Size, tr); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = errclass.With(errclass.InvalidArgument, fmt.Errorf("the archive ends in the middle: %w", err))
				}
				return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
			}
		default:
			return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("archive entry %q: not part of an OCI image layout", h.Name))
		}
	}
	if !sawLayout || index == nil {
		return nil, errclass.With(errclass.InvalidArgument, errors.New("not an OCI image layout: no oci-layout or index.json"))
	}
	if len(index.Manifests) == 0 {
		return nil, errclass.With(errclass.InvalidArgument, errors.New("index.json names no image"))
	}
	for _, d := range index.Manifests {
		if err := content.ValidateDigest(d.Digest); err != nil {
			return nil, fmt.Errorf("index.json: %w", err)
		}
	}
	return index, nil
}
