// Package pause makes the default image of a pod's sandbox, the container
// that holds the pod's namespaces while its containers come and go: a
// static busybox taken from the host (Debian's busybox-static installs
// one at /bin/busybox), which waits for SIGTERM and then exits 0. The
// image is built in memory, as an OCI image layout in a tar archive, and
// imported into the daemon's store; no registry is needed.
package pause

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// DefaultBusybox is where Debian's busybox-static puts its busybox.
const DefaultBusybox = "/bin/busybox"

// Repository names the image; its tag is the start of the busybox's
// digest, so that another busybox makes another image.
const Repository = "troupe.local/kubelet-pause"

// command sleeps until SIGTERM or SIGINT, then exits 0. A bare sleep as a
// pid namespace's init would ignore SIGTERM (the kernel delivers an init
// only the signals it handles), and the sandbox would wait out a stop's
// grace period to be killed.
var command = []string{"/bin/busybox", "sh", "-c",
	"trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 2147483647 & wait $!; done"}

// Store is what Ensure needs of troupe's client.
type Store interface {
	Image(ctx context.Context, ref string) (api.Image, error)
	ImportImages(ctx context.Context, archive io.Reader) ([]api.Image, error)
}

// Ensure makes sure the daemon has the pause image of the host's busybox
// (DefaultBusybox), importing it if not, and returns its reference.
func Ensure(ctx context.Context, s Store) (string, error) {
	return EnsureFrom(ctx, s, DefaultBusybox)
}

// EnsureFrom is Ensure with the busybox at path.
func EnsureFrom(ctx context.Context, s Store, busybox string) (string, error) {
	bin, err := readStatic(busybox)
	if err != nil {
		return "", err
	}
	ref := Reference(bin)
	if _, err := s.Image(ctx, ref); err == nil {
		return ref, nil
	} else if !errors.Is(err, errclass.NotFound) {
		return "", fmt.Errorf("pause image %s: %w", ref, err)
	}
	archive, err := Archive(bin, ref)
	if err != nil {
		return "", err
	}
	if _, err := s.ImportImages(ctx, bytes.NewReader(archive)); err != nil {
		return "", fmt.Errorf("import the pause image %s: %w", ref, err)
	}
	return ref, nil
}

// readStatic reads the busybox at path, refusing one that is not a
// statically linked ELF program: the image holds nothing else, no loader
// nor libraries.
func readStatic(path string) ([]byte, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pause image: %w (install a static busybox, Debian's busybox-static)", err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("pause image: %s: not an ELF program: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("pause image: %s is dynamically linked; it needs a static busybox (Debian's busybox-static)", path)
		}
	}
	return bin, nil
}

// Reference is the pause image's name for the busybox bin.
func Reference(bin []byte) string {
	sum := sha256.Sum256(bin)
	return Repository + ":" + hex.EncodeToString(sum[:])[:12]
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Archive is the OCI image layout, as a tar archive, of one image named
// ref: one uncompressed layer holding bin as /bin/busybox, run as the
// command above. The same bin and ref make the same bytes.
func Archive(bin []byte, ref string) ([]byte, error) {
	layer, err := tarOf([]entry{
		{name: "bin/", mode: 0o755, dir: true},
		{name: "bin/busybox", mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	layerDesc := blobDesc("application/vnd.oci.image.layer.v1.tar", layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": command},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return nil, err
	}
	configDesc := blobDesc("application/vnd.oci.image.config.v1+json", config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return nil, err
	}
	manifestDesc := blobDesc("application/vnd.oci.image.manifest.v1+json", manifest)
	manifestDesc.Annotations = map[string]string{"io.containerd.image.name": ref}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return nil, err
	}
	files := []entry{
		{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "index.json", mode: 0o644, data: index},
	}
	for _, b := range [][]byte{layer, config, manifest} {
		files = append(files, entry{name: "blobs/sha256/" + hexDigest(b), mode: 0o644, data: b})
	}
	return tarOf(files)
}

type entry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// tarOf is a tar of entries, owned by root, dated at the epoch, so that
// the same entries make the same bytes.
func tarOf(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg,
			Size: int64(len(e.data)), Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hexDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func blobDesc(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexDigest(b), Size: int64(len(b))}
}
