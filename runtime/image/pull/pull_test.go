package pull_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image/content"
	"github.com/troupe-run/troupe/runtime/image/pull"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// The tests start registries: the guard kills them if the binary dies.
	os.Exit(linuxtest.Guarded(m.Run))
}

var amd64 = pull.Platform{OS: "linux", Architecture: "amd64"}

// loopbackOnly is the dialer of every test's puller: connecting anywhere
// but loopback fails the test, and the connection is not made.
func loopbackOnly(t *testing.T) pull.DialFunc {
	t.Helper()
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("the puller dialed %s, which is not loopback", addr)
			return nil, fmt.Errorf("test dialer: %s is not loopback", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kind is the family of media types of a test image.
type kind int

const (
	oci kind = iota
	docker
)

// testImage builds a two-layer image for arch whose files say which
// image they are from, so that two images never share a layer.
func testImage(t *testing.T, k kind, arch, tag string) v1.Image {
	t.Helper()
	manifestMT, configMT, layerMT := types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	if k == docker {
		manifestMT, configMT, layerMT = types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	}
	img := mutate.MediaType(empty.Image, manifestMT)
	img = mutate.ConfigMediaType(img, configMT)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: arch, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		tb := registrytest.Tar(t, map[string]string{
			fmt.Sprintf("layer%d.txt", i): fmt.Sprintf("%s %s %s layer %d\n", t.Name(), tag, arch, i),
			// Some bulk, so that progress has something to report.
			"bulk": strings.Repeat(fmt.Sprintf("%s-%d-", arch, i), 20000),
		})
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil },
			tarball.WithMediaType(layerMT))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t *testing.T, ref string, k kind, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	if k == docker {
		idx = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	}
	for arch, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	return idx
}

// checkPulled checks that res describes img and that all of it is stored.
func checkPulled(t *testing.T, s *content.Store, res *pull.Result, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	dgst, _ := img.Digest()
	mt, _ := img.MediaType()
	if res.ManifestDigest != dgst.String() || res.MediaType != string(mt) || res.ConfigDigest != m.Config.Digest.String() {
		t.Fatalf("result %+v, want manifest %s (%s), config %s", res, dgst, mt, m.Config.Digest)
	}
	layers, _ := img.Layers()
	if len(res.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(res.Layers), len(layers))
	}
	for i, l := range layers {
		d, _ := l.Digest()
		diffID, _ := l.DiffID()
		size, _ := l.Size()
		lmt, _ := l.MediaType()
		want := pull.Layer{Digest: d.String(), DiffID: diffID.String(), Size: size, MediaType: string(lmt)}
		if res.Layers[i] != want {
			t.Fatalf("layer %d: %+v, want %+v", i, res.Layers[i], want)
		}
	}
	for _, d := range append([]string{res.ManifestDigest, res.ConfigDigest}, layerDigests(res)...) {
		if _, err := s.Info(d); err != nil {
			t.Fatalf("blob %s not stored: %v", d, err)
		}
	}
	raw, _ := img.RawManifest()
	rc, err := s.Open(res.ManifestDigest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, raw) {
		t.Fatalf("stored manifest differs from the pushed one")
	}
}

func layerDigests(res *pull.Result) []string {
	var out []string
	for _, l := range res.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestPull(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{})
	host := reg.Host()

	ociImg := testImage(t, oci, "amd64", "oci")
	push(t, host+"/app:oci", ociImg)
	ociDigest, _ := ociImg.Digest()
	dockerImg := testImage(t, docker, "amd64", "docker")
	push(t, host+"/app:docker", dockerImg)
	armImg := testImage(t, oci, "arm64", "multi")
	amdImg := testImage(t, oci, "amd64", "multi")
	idx := pushIndex(t, host+"/app:multi", oci, map[string]v1.Image{"arm64": armImg, "amd64": amdImg})
	idxDigest, _ := idx.Digest()
	listAmd := testImage(t, docker, "amd64", "list")
	list := pushIndex(t, host+"/app:list", docker, map[string]v1.Image{"amd64": listAmd, "arm64": testImage(t, docker, "arm64", "list")})
	listDigest, _ := list.Digest()

	tests := []struct {
		name      string
		ref       string
		want      v1.Image
		wantIndex string
	}{
		{"OCI by tag", host + "/app:oci", ociImg, ""},
		{"OCI by digest", host + "/app@" + ociDigest.String(), ociImg, ""},
		{"Docker schema 2", host + "/app:docker", dockerImg, ""},
		{"OCI index picks amd64", host + "/app:multi", amdImg, idxDigest.String()},
		{"index by digest", host + "/app@" + idxDigest.String(), amdImg, idxDigest.String()},
		{"Docker manifest list picks amd64", host + "/app:list", listAmd, listDigest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := pull.NewWithDialer(s, pull.Options{Platform: amd64}, loopbackOnly(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := p.Pull(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			checkPulled(t, s, res, tt.want)
			if res.IndexDigest != tt.wantIndex {
				t.Fatalf("index digest %q, want %q", res.IndexDigest, tt.wantIndex)
			}
			if tt.wantIndex != "" {
				if _, err := s.Info(tt.wantIndex); err != nil {
					t.Fatalf("index not stored: %v", err)
				}
			}
			// Again: everything is there, nothing to fetch but manifests.
			if _, err := p.Pull(ctx, tt.ref); err != nil {
				t.Fatalf("second pull: %v", err)
			}
		})
	}
}

func TestPullErrors(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{})
	host := reg.Host()
	pushIndex(t, host+"/app:noamd", oci, map[string]v1.Image{
		"arm64": testImage(t, oci, "arm64", "noamd"),
		"s390x": testImage(t, oci, "s390x", "noamd"),
	})
	// A layer the registry then serves corrupted: same size, other bytes.
	bad := testImage(t, oci, "amd64", "corrupt")
	push(t, host+"/app:corrupt", bad)
	badLayers, _ := bad.Layers()
	badDigest, _ := badLayers[1].Digest()
	corrupt(t, reg.BlobPath(badDigest.String()))
	badManifest, _ := bad.Digest()
	// A layer served short.
	short := testImage(t, oci, "amd64", "short")
	push(t, host+"/app:short", short)
	shortLayers, _ := short.Layers()
	shortDigest, _ := shortLayers[0].Digest()
	truncate(t, reg.BlobPath(shortDigest.String()))
	// A non-distributable layer.
	nd := testImage(t, oci, "amd64", "nondist")
	ndLayers, _ := nd.Layers()
	ndLayer, err := tarball.LayerFromOpener(ndLayers[0].Uncompressed, tarball.WithMediaType(types.OCIRestrictedLayer))
	if err != nil {
		t.Fatal(err)
	}
	nd, err = mutate.AppendLayers(nd, ndLayer)
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/app:nondist", nd, remote.WithNondistributable)

	tests := []struct {
		name      string
		ref       string
		class     error
		want      []string // substrings of the error
		notStored []string
	}{
		{"index without amd64", host + "/app:noamd", errclass.NotFound,
			[]string{"no linux/amd64 image in index " + host + "/app:noamd (has: ", "linux/arm64", "linux/s390x"}, nil},
		{"corrupted blob", host + "/app:corrupt", errclass.InvalidArgument,
			[]string{"digest mismatch: expected " + badDigest.String()}, []string{badDigest.String(), badManifest.String()}},
		{"truncated blob", host + "/app:short", nil,
			[]string{shortDigest.String()}, []string{shortDigest.String()}},
		{"non-distributable layer", host + "/app:nondist", errclass.InvalidArgument,
			[]string{"foreign or non-distributable"}, nil},
		{"missing tag", host + "/app:nope", errclass.NotFound, []string{"app:nope"}, nil},
		{"bad reference", "UPPER/Case:tag", errclass.InvalidArgument, []string{"invalid reference"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := pull.NewWithDialer(s, pull.Options{Platform: amd64}, loopbackOnly(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := p.Pull(ctx, tt.ref)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if tt.class != nil && !errors.Is(err, tt.class) {
				t.Fatalf("error %q is not of class %v", err, tt.class)
			}
			for _, d := range tt.notStored {
				if _, err := s.Info(d); !errors.Is(err, errclass.NotFound) {
					t.Fatalf("%s stored after a failed pull (%v)", d, err)
				}
			}
		})
	}
}

// corrupt overwrites a file with as many other bytes.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func TestPullProgress(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{})
	img := testImage(t, oci, "amd64", "progress")
	push(t, reg.Host()+"/app:progress", img)
	var (
		mu      sync.Mutex
		reports = map[string][]pull.Progress{}
	)
	s := newStore(t)
	p := pull.NewWithDialer(s, pull.Options{Platform: amd64, Progress: func(pr pull.Progress) {
		mu.Lock()
		defer mu.Unlock()
		reports[pr.Digest] = append(reports[pr.Digest], pr)
	}}, loopbackOnly(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.Pull(ctx, reg.Host()+"/app:progress")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != len(res.Layers) {
		t.Fatalf("progress for %d blobs, want the %d layers: %v", len(reports), len(res.Layers), reports)
	}
	var total, done int64
	for _, l := range res.Layers {
		rs := reports[l.Digest]
		if len(rs) == 0 {
			t.Fatalf("no progress for layer %s", l.Digest)
		}
		last := rs[len(rs)-1]
		if last.Total != l.Size || last.Done != l.Size {
			t.Fatalf("last progress of %s: %+v, want %d of %d", l.Digest, last, l.Size, l.Size)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].Done < rs[i-1].Done {
				t.Fatalf("progress of %s went back: %v", l.Digest, rs)
			}
		}
		total += last.Total
		done += last.Done
	}
	if m, _ := img.Manifest(); total != sumSizes(m) || done != total {
		t.Fatalf("progress totals %d done of %d, want %d", done, total, sumSizes(m))
	}
}

func sumSizes(m *v1.Manifest) int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func TestPullAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.Start(t, registrytest.Config{Htpasswd: "troupe:" + string(hash) + "\n"})
	img := testImage(t, oci, "amd64", "auth")
	ref := reg.Host() + "/private:auth"
	push(t, ref, img, remote.WithAuth(&authn.Basic{Username: "troupe", Password: "s3cret"}))

	authFile := func(user, pass string) string {
		path := filepath.Join(t.TempDir(), "config.json")
		cfg := map[string]any{"auths": map[string]any{
			reg.Host(): map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
		}}
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name        string
		authConfig  string
		credentials *pull.Credentials
		ok          bool
	}{
		{"right credentials", authFile("troupe", "s3cret"), nil, true},
		{"wrong password", authFile("troupe", "guess"), nil, false},
		{"no config file (anonymous)", "", nil, false},
		{"config file missing (anonymous)", filepath.Join(t.TempDir(), "none.json"), nil, false},
		// A pull's own credentials (imagePullSecrets) win over the file's.
		{"the pull's credentials", "", &pull.Credentials{Username: "troupe", Password: "s3cret"}, true},
		{"the pull's credentials over a wrong file", authFile("troupe", "guess"), &pull.Credentials{Username: "troupe", Password: "s3cret"}, true},
		{"the pull's wrong credentials over a right file", authFile("troupe", "s3cret"), &pull.Credentials{Username: "troupe", Password: "guess"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := pull.NewWithDialer(s, pull.Options{Platform: amd64, AuthConfig: tt.authConfig, Credentials: tt.credentials}, loopbackOnly(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := p.Pull(ctx, ref)
			if !tt.ok {
				if !errors.Is(err, errclass.FailedPrecondition) {
					t.Fatalf("pull without the right credentials: %v, want FailedPrecondition", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPulled(t, s, res, img)
		})
	}
}

// TestPullHangingRegistry: a registry that accepts connections and never
// answers ends the pull on the idle timeout, or on ctx, whichever is first.
func TestPullHangingRegistry(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name  string
		idle  time.Duration
		ctx   time.Duration
		limit time.Duration
	}{
		{"idle timeout", 300 * time.Millisecond, time.Minute, 15 * time.Second},
		{"ctx deadline", time.Minute, 700 * time.Millisecond, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pull.NewWithDialer(newStore(t), pull.Options{Platform: amd64, IdleTimeout: tt.idle}, loopbackOnly(t))
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
			defer cancel()
			start := time.Now()
			_, err := p.Pull(ctx, host+"/hang:latest")
			took := time.Since(start)
			if err == nil {
				t.Fatal("pull from a hanging registry succeeded")
			}
			if took > tt.limit {
				t.Fatalf("pull took %v to fail (limit %v): %v", took, tt.limit, err)
			}
			if !errors.Is(err, errclass.Unavailable) {
				t.Fatalf("error %v is not Unavailable", err)
			}
			t.Logf("failed after %v: %v", took, err)
		})
	}
}

// TestPullRedirectToPlainHTTPRefused: a loopback registry that sends its
// blobs to a plain HTTP address elsewhere (a TEST-NET one) does not get
// the pull to connect there.
func TestPullRedirectToPlainHTTPRefused(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{RedirectBaseURL: "http://192.0.2.1:5000"})
	img := testImage(t, oci, "amd64", "redirect")
	push(t, reg.Host()+"/app:redirect", img)
	s := newStore(t)
	p := pull.NewWithDialer(s, pull.Options{Platform: amd64}, loopbackOnly(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.Pull(ctx, reg.Host()+"/app:redirect")
	if err == nil || !strings.Contains(err.Error(), "plain HTTP to 192.0.2.1:5000 refused") {
		t.Fatalf("pull redirected to plain HTTP elsewhere: %v", err)
	}
	if !errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("error %v is not InvalidArgument", err)
	}
}

// TestTransportRefusesPlainHTTP: plain HTTP to anything but loopback or a
// listed registry fails before the dialer is called.
func TestTransportRefusesPlainHTTP(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		insecure []string
		allowed  bool
	}{
		{"TEST-NET address", "http://192.0.2.1:5000/v2/", nil, false},
		{"private address", "http://10.1.2.3/v2/", nil, false},
		{"name", "http://registry.example/v2/", nil, false},
		{"listed elsewhere", "http://192.0.2.1:5000/v2/", []string{"192.0.2.2:5000"}, false},
		{"listed other port", "http://192.0.2.1:5000/v2/", []string{"192.0.2.1:5001"}, false},
		{"ftp", "ftp://127.0.0.1/v2/", nil, false},
		{"listed host:port", "http://192.0.2.1:5000/v2/", []string{"192.0.2.1:5000"}, true},
		{"listed host", "http://192.0.2.1:5000/v2/", []string{"192.0.2.1"}, true},
		{"loopback", "http://127.0.0.2:5000/v2/", nil, true},
		{"ipv6 loopback", "http://[::1]:5000/v2/", nil, true},
		{"localhost", "http://localhost:5000/v2/", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialed := false
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("test dialer: no connections here")
			}
			rt := pull.NewTransport(pull.Options{InsecureRegistries: tt.insecure, IdleTimeout: time.Second}, dial)
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if err == nil {
				t.Fatal("request succeeded with a dialer that fails")
			}
			if dialed != tt.allowed {
				t.Fatalf("dialed = %v, want %v (err %v)", dialed, tt.allowed, err)
			}
			if !tt.allowed && !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("refusal %v is not InvalidArgument", err)
			}
		})
	}
}

// TestTransportIdleBody: a body that stops coming fails its read after the
// idle timeout instead of blocking.
func TestTransportIdleBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("a few bytes"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	rt := pull.NewTransport(pull.Options{IdleTimeout: 200 * time.Millisecond}, loopbackOnly(t))
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if err == nil || !errors.Is(err, errclass.Unavailable) || !strings.Contains(err.Error(), "sent nothing") {
		t.Fatalf("read of a stalled body: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stalled body failed only after %v", took)
	}
}

func TestPlatform(t *testing.T) {
	if p := pull.HostPlatform(); p.OS == "" || p.Architecture == "" {
		t.Fatalf("HostPlatform() = %+v", p)
	}
}
