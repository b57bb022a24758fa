package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// TestExportImport: an image exported from one store is imported into
// another (another machine's) by name, with its layers, and mounts there;
// skopeo reads the archive, and an archive skopeo wrote imports.
func TestExportImport(t *testing.T) {
	linuxtest.RequireRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/app:2"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sh"}},
		registrytest.Tar(t, map[string]string{"etc/motd": "exported\n"}), registrytest.Tar(t, map[string]string{"bin/tool": "x"}))
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := image.Open(filepath.Join(dir, "a"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := a.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := a.Export(ctx, ref, &archive); err != nil {
		t.Fatal(err)
	}

	b, err := image.Open(filepath.Join(dir, "b"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	added, err := b.Import(ctx, bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 1 || added[0].Digest != pulled.Digest {
		t.Fatalf("imported %+v, want %s", added, pulled.Digest)
	}
	got, err := b.Get(ref)
	if err != nil || got.Digest != pulled.Digest || len(got.Layers) != 2 {
		t.Fatalf("Get after import: %+v, %v", got, err)
	}
	root, err := b.Mount(ctx, "c", got)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Unmount("c") })
	if data, err := os.ReadFile(filepath.Join(root, "etc", "motd")); err != nil || string(data) != "exported\n" {
		t.Errorf("the imported image's file: %q, %v", data, err)
	}

	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Log("skopeo is not installed: the interoperability half is skipped")
		return
	}
	path := filepath.Join(dir, "exported.tar")
	if err := os.WriteFile(path, archive.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "skopeo", "inspect", "oci-archive:"+path).CombinedOutput(); err != nil {
		t.Errorf("skopeo cannot read the export: %v\n%s", err, out)
	}
	theirs := filepath.Join(dir, "skopeo.tar")
	if out, err := exec.CommandContext(ctx, "skopeo", "copy", "-q", "--src-tls-verify=false",
		"docker://"+ref, "oci-archive:"+theirs+":"+reg.Host()+"/from-skopeo:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	f, err := os.Open(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := image.Open(filepath.Join(dir, "c"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(ctx, f); err != nil {
		t.Fatalf("import of skopeo's archive: %v", err)
	}
	// skopeo writes OCI media types (the push was Docker's): the same
	// layers under another manifest.
	got, err = c.Get(reg.Host() + "/from-skopeo:1")
	if err != nil || len(got.Layers) != 2 || got.Layers[0].DiffID != pulled.Layers[0].DiffID || got.Layers[1].DiffID != pulled.Layers[1].DiffID {
		t.Errorf("skopeo's image after import: %+v, %v", got, err)
	}
}

// TestImportRefuses: archives that are not a clean OCI layout are refused
// as the caller's fault, leaving no image and no blob that fails its digest.
func TestImportRefuses(t *testing.T) {
	layout := `{"imageLayoutVersion":"1.0.0"}`
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		strings.Repeat("a", 64) + `","size":2}]}`
	tests := []struct {
		name    string
		entries []tar.Header
		bodies  []string
		want    string
	}{
		{"climbing out", []tar.Header{{Name: "../evil"}}, []string{"x"}, "not part of an OCI image layout"},
		{"a symlink", []tar.Header{{Name: "blobs/sha256/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, []string{""}, "not a regular file"},
		{"a bad blob name", []tar.Header{{Name: "blobs/sha256/../../x"}}, []string{"x"}, "not part of an OCI image layout"},
		{"a blob that is not its digest", []tar.Header{{Name: "blobs/sha256/" + strings.Repeat("b", 64)}}, []string{"not that"}, "digest"},
		{"no layout file", []tar.Header{{Name: "index.json"}}, []string{index}, "not an OCI image layout"},
		{"a manifest it lacks", []tar.Header{{Name: "oci-layout"}, {Name: "index.json"}}, []string{layout, index}, "sha256:aaaa"},
		{"garbage", nil, nil, "not an OCI image layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for i, h := range tc.entries {
				if h.Typeflag == 0 {
					h.Typeflag = tar.TypeReg
				}
				h.Mode, h.Size = 0o644, int64(len(tc.bodies[i]))
				if h.Typeflag != tar.TypeReg {
					h.Size = 0
				}
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write([]byte(tc.bodies[i])[:h.Size]); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			dir := t.TempDir()
			s, err := image.Open(dir, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Import(context.Background(), &buf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import: %v, want an error saying %q", err, tc.want)
			}
			if !errors.Is(err, errclass.InvalidArgument) && !errors.Is(err, errclass.NotFound) {
				t.Errorf("Import: %v is not the caller's fault (InvalidArgument or NotFound)", err)
			}
			if n := len(s.List()); n != 0 {
				t.Errorf("%d images after a refused import", n)
			}
			if blobs, _ := os.ReadDir(filepath.Join(dir, "content", "blobs", "sha256")); len(blobs) != 0 {
				t.Errorf("blobs after a refused import: %d", len(blobs))
			}
		})
	}
}
