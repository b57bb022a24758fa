package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TarDir is a layer of the tree at dir: its directories, files and
// symlinks, owned by root.
func TarDir(t testing.TB, dir string) []byte {
	t.Helper()
	layer, err := TarTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// TarTree is TarDir for a program rather than a test (make kube-up's
// registry seeds itself with it).
func TarTree(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if d.Type()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = rel, 0, 0, "", ""
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Push builds an image of layers (tars, bottom first) with the
// configuration cfg and pushes it, over plain HTTP, as ref.
func Push(t testing.TB, ref string, cfg v1.Config, layers ...[]byte) {
	t.Helper()
	push(t, ref, authn.Anonymous, cfg, layers...)
}

// PushAuth is Push to a registry that wants a user and password
// (Config.Htpasswd).
func PushAuth(t testing.TB, ref, user, password string, cfg v1.Config, layers ...[]byte) {
	t.Helper()
	push(t, ref, &authn.Basic{Username: user, Password: password}, cfg, layers...)
}

func push(t testing.TB, ref string, auth authn.Authenticator, cfg v1.Config, layers ...[]byte) {
	t.Helper()
	if err := PushImage(context.Background(), ref, auth, cfg, layers...); err != nil {
		t.Fatal(err)
	}
}

// PushImage is Push for a program rather than a test: an image of layers
// for this machine's architecture with the configuration cfg, pushed over
// plain HTTP as ref with auth.
func PushImage(ctx context.Context, ref string, auth authn.Authenticator, cfg v1.Config, layers ...[]byte) error {
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH,
		RootFS: v1.RootFS{Type: "layers"}, Config: cfg})
	if err != nil {
		return err
	}
	for _, tb := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithAuth(auth), remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Tar is a layer holding files (name -> content), each 0755 so that any
// of them may be run.
func Tar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
