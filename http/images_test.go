package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
)

// pullAnswer is what POST /images answered: its status, and for a stream
// its lines.
type pullAnswer struct {
	status int
	// err is the error answer of a pull refused before its stream.
	err   response
	lines []api.PullProgress
}

// last is the stream's last line.
func (a pullAnswer) last() api.PullProgress {
	if len(a.lines) == 0 {
		return api.PullProgress{}
	}
	return a.lines[len(a.lines)-1]
}

// pull sends POST /images with body and reads the whole answer.
func (e *env) pull(body string) pullAnswer {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp := e.send(ctx, "POST", "/images", body)
	defer resp.Body.Close()
	a := pullAnswer{status: resp.StatusCode}
	if resp.StatusCode != nethttp.StatusOK {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		a.err = response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
		checkErrorBody(e.t, "POST /images "+body, a.err)
		return a
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		e.t.Errorf("POST /images: Content-Type %q, want application/x-ndjson", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var p api.PullProgress
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			e.t.Fatalf("POST /images: line %q: %v", sc.Text(), err)
		}
		a.lines = append(a.lines, p)
	}
	if err := sc.Err(); err != nil {
		e.t.Fatalf("POST /images: read the stream: %v", err)
	}
	return a
}

// manifestLayers returns the digests of the layers of repo:tag in reg, as
// its manifest lists them.
func manifestLayers(t *testing.T, reg *registrytest.Registry, repo, tag string) []string {
	t.Helper()
	req, _ := nethttp.NewRequestWithContext(t.Context(), "GET", "http://"+reg.Host()+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := (&nethttp.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s:%s: %v %+v", repo, tag, err, m)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestImages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/busybox:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sh", "-c", "echo hello from $GREETING; exec sleep 300"}},
		registrytest.TarDir(t, e.rig.Rootfs))

	// The pull streams each layer's progress, then the image.
	a := e.pull(fmt.Sprintf(`{"reference": %q}`, ref))
	if a.status != nethttp.StatusOK {
		t.Fatalf("pull: %d %s", a.status, a.err.body)
	}
	img := a.last().Image
	if img == nil || !strings.HasPrefix(img.Digest, "sha256:") || !slices.Equal(img.Names, []string{ref}) ||
		len(img.Layers) != 1 || img.Size <= 0 || img.Containers != 0 {
		t.Fatalf("pull's last line %+v, want the image", a.last())
	}
	progress := a.lines[:len(a.lines)-1]
	if len(progress) == 0 {
		t.Errorf("a pull of a fresh layer reported no progress")
	}
	for _, p := range progress {
		if p.Layer != img.Layers[0].Digest || p.Image != nil || p.Error != nil || p.Done > p.Total {
			t.Errorf("progress line %+v, want one of layer %s", p, img.Layers[0].Digest)
		}
	}
	if p := progress[len(progress)-1]; p.Done != p.Total || p.Total != img.Layers[0].Size {
		t.Errorf("last progress %+v, want the whole layer of %d bytes", p, img.Layers[0].Size)
	}

	t.Run("list and get", func(t *testing.T) {
		e := e.sub(t)
		var l api.ImageList
		decodeBody(t, e.mustStatus(200, "GET", "/images", ""), &l)
		if len(l.Images) != 1 || l.Images[0].Digest != img.Digest {
			t.Errorf("GET /images: %+v", l)
		}
		// By name, its slashes and colon in the path, and by digest.
		for _, p := range []string{"/images/" + ref, "/images/" + img.Digest} {
			var got api.Image
			decodeBody(t, e.mustStatus(200, "GET", p, ""), &got)
			if got.Digest != img.Digest || !slices.Equal(got.Names, []string{ref}) {
				t.Errorf("GET %s: %+v", p, got)
			}
		}
	})

	// A start from it: the image's command, with the request's environment.
	r := e.mustStatus(nethttp.StatusCreated, "POST", "/containers/web",
		fmt.Sprintf(`{"image": %q, "env": ["GREETING=the image"], "memory": 67108864, "pids": 50, "readOnlyRoot": true, "mounts": [{"type": "tmpfs", "destination": "/scratch"}]}`, ref))
	var c api.Container
	decodeBody(t, r, &c)
	if c.Image != img.Digest || c.State.Status != api.Running || len(c.Processes) != 1 {
		t.Fatalf("start from the image: %+v", c)
	}
	testutil.Eventually(t, "the container to greet", func() bool {
		return strings.Contains(string(e.do("GET", "/containers/web/logs", "").body), "hello from the image")
	})
	var st api.Stats
	decodeBody(t, e.mustStatus(200, "GET", "/containers/web/stats", ""), &st)
	if st.MemoryLimit != 64<<20 || st.PidsLimit != 50 {
		t.Errorf("stats %+v, want the start's memory and pids limits", st)
	}
	var used api.Image
	decodeBody(t, e.mustStatus(200, "GET", "/images/"+ref, ""), &used)
	if used.Containers != 1 {
		t.Errorf("an image a container runs from counts %d containers", used.Containers)
	}

	sleep := e.bundle("sleep", "sleep", "300")
	e.run(t, []request{
		{"pull without reference", "POST", "/images", `{}`, 400, []string{"reference"}},
		{"pull with a typo", "POST", "/images", `{"referense": "x"}`, 400, []string{"unknown field", "referense"}},
		{"pull of a bad reference", "POST", "/images", `{"reference": "UPPER/case:1"}`, 400, []string{"UPPER/case:1"}},
		{"pull, malformed JSON", "POST", "/images", `{"reference": `, 400, []string{"malformed JSON"}},
		{"pull of a name the registry lacks", "POST", "/images", fmt.Sprintf(`{"reference": %q}`, reg.Host()+"/nosuch:1"), 404, []string{"nosuch"}},
		{"get unknown", "GET", "/images/" + reg.Host() + "/nosuch:1", "", 404, []string{"nosuch"}},
		{"get unknown digest", "GET", "/images/sha256:" + strings.Repeat("0", 64), "", 404, nil},
		{"get without ref", "GET", "/images/", "", 400, []string{"name or digest"}},
		{"remove in use", "DELETE", "/images/" + ref, "", 409, []string{"used by 1"}},
		{"remove, bad force", "DELETE", "/images/" + ref + "?force=maybe", "", 400, []string{"force"}},
		{"remove unknown", "DELETE", "/images/" + reg.Host() + "/nosuch:1", "", 404, nil},
		{"image and bundle", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "bundlePath": %q}`, ref, sleep), 400, []string{"image", "bundlePath"}},
		{"image and checkpoint", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "checkpoint": "c1"}`, ref), 400, []string{"checkpoint"}},
		{"unknown pull policy", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "pull": "sometimes"}`, ref), 400, []string{"pull", "sometimes"}},
		{"never pulled", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q}`, reg.Host()+"/nosuch:1"), 404, []string{"nosuch"}},
		{"not in the registry either", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "pull": "missing"}`, reg.Host()+"/nosuch:1"), 404, []string{"nosuch"}},
		{"image overrides on a bundle", "POST", "/containers/x1", fmt.Sprintf(`{"bundlePath": %q, "env": ["A=b"]}`, sleep), 400, []string{"env", "image"}},
		{"bad mount type", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "mounts": [{"type": "nfs", "destination": "/x"}]}`, ref), 400, []string{"nfs"}},
		// imagespec classes a refused bind as a facility this daemon lacks.
		{"bind refused", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "mounts": [{"type": "bind", "source": "/tmp", "destination": "/x"}]}`, ref), 409, []string{"bind", "not allowed"}},
		{"unknown user", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "user": "nobody-here"}`, ref), 400, []string{"nobody-here"}},
		{"unknown field", "POST", "/containers/x1", fmt.Sprintf(`{"image": %q, "entryPoint": ["x"]}`, ref), 400, []string{"entryPoint", "entrypoint"}},
		{"pool of an image and a bundle", "PUT", "/pools/p", fmt.Sprintf(`{"image": %q, "bundlePath": %q, "size": 1}`, ref, sleep), 400, []string{"bundlePath", "image"}},
		{"pool with overrides, no image", "PUT", "/pools/p", `{"args": ["true"], "size": 1}`, 400, []string{"args", "image"}},
		{"pool of an image never pulled", "PUT", "/pools/p", fmt.Sprintf(`{"image": %q, "size": 1}`, reg.Host()+"/nosuch:1"), 404, []string{"nosuch"}},
		{"pool as a user the image lacks", "PUT", "/pools/p", fmt.Sprintf(`{"image": %q, "user": "nobody-here", "size": 1}`, ref), 400, []string{"nobody-here"}},
	})
	want(t, "GET x1", e.do("GET", "/containers/x1", ""), 404)
	want(t, "GET pool p", e.do("GET", "/pools/p", ""), 404)

	// A pool of the image: a start with the same overrides claims from it.
	var p api.Pool
	decodeBody(t, e.mustStatus(nethttp.StatusCreated, "PUT", "/pools/greeters", fmt.Sprintf(`{"image": %q, "env": ["GREETING=a pool"], "size": 1}`, ref)), &p)
	if p.Image != ref || p.Digest != img.Digest || p.BundlePath != "" {
		t.Errorf("pool of the image: %+v", p)
	}
	testutil.Eventually(t, "the pool to fill", func() bool {
		decodeBody(t, e.do("GET", "/pools/greeters", ""), &p)
		return p.Ready == 1
	})
	decodeBody(t, e.mustStatus(nethttp.StatusCreated, "POST", "/containers/pooled", fmt.Sprintf(`{"image": %q, "env": ["GREETING=a pool"]}`, ref)), &c)
	if !c.Warm || c.Image != img.Digest {
		t.Errorf("a start with the pool's image and overrides: %+v, want warm", c)
	}
	testutil.Eventually(t, "the pooled container to greet", func() bool {
		return strings.Contains(string(e.do("GET", "/containers/pooled/logs", "").body), "hello from a pool")
	})
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/pools/greeters", "")
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/pooled?force=true", "")

	// Once its container is gone the image goes, and so does every root.
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/web?force=true", "")
	var removed api.Image
	decodeBody(t, e.mustStatus(200, "DELETE", "/images/"+ref, ""), &removed)
	if removed.Digest != img.Digest {
		t.Errorf("DELETE answered %+v, want the image removed", removed)
	}
	var l api.ImageList
	decodeBody(t, e.mustStatus(200, "GET", "/images", ""), &l)
	if len(l.Images) != 0 {
		t.Errorf("after the removal GET /images lists %+v", l.Images)
	}
	if roots, err := e.images.Mounted(); err != nil || len(roots) != 0 {
		t.Errorf("roots left: %v %v", roots, err)
	}

	// A forced removal while a container runs from it: the container runs on.
	if a := e.pull(fmt.Sprintf(`{"reference": %q}`, ref)); a.status != 200 || a.last().Image == nil {
		t.Fatalf("pull again: %d %+v", a.status, a.last())
	}
	e.mustStatus(nethttp.StatusCreated, "POST", "/containers/web2", fmt.Sprintf(`{"image": %q}`, img.Digest))
	e.mustStatus(200, "DELETE", "/images/"+img.Digest+"?force=true", "")
	if got := e.get("web2"); got.State.Status != api.Running || got.Image != img.Digest {
		t.Errorf("after a forced removal of its image: %+v", got)
	}
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/web2?force=true", "")
}

// TestPullFailsMidStream corrupts a layer in the registry: the pull fails,
// as an error answer when it fails before any progress, as the stream's
// last line after; never with an image.
func TestPullFailsMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	reg := registrytest.Start(t, registrytest.Config{})
	dir := t.TempDir()
	noise := make([]byte, 4<<20) // random: gzip leaves it its size, so the download takes a while
	_, _ = rand.Read(noise)
	if err := os.WriteFile(filepath.Join(dir, "noise"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	registrytest.Push(t, reg.Host()+"/noise:1", v1.Config{Cmd: []string{"true"}}, registrytest.TarDir(t, dir))
	blob := reg.BlobPath(manifestLayers(t, reg, "noise", "1")[0])
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := e.pull(fmt.Sprintf(`{"reference": %q}`, reg.Host()+"/noise:1"))
	switch {
	case a.status != 200:
		t.Logf("refused before the stream: %d %s", a.status, a.err.body)
	case a.last().Error == nil || a.last().Image != nil:
		t.Errorf("the stream's last line %+v, want the error", a.last())
	default:
		last := a.last().Error
		if last.Code == "" || last.Error == "" {
			t.Errorf("the stream's error %+v has no code or message", last)
		}
		t.Logf("failed in the stream after %d lines: %+v", len(a.lines)-1, last)
	}
	var l api.ImageList
	decodeBody(t, e.mustStatus(200, "GET", "/images", ""), &l)
	if len(l.Images) != 0 {
		t.Errorf("a failed pull recorded %+v", l.Images)
	}
}

// TestImagesWithoutStore: a daemon without an image store answers image
// requests 503, the pull before any stream.
func TestImagesWithoutStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.run(t, []request{
		{"list", "GET", "/images", "", 503, []string{"image store"}},
		{"get", "GET", "/images/busybox", "", 503, []string{"image store"}},
		{"remove", "DELETE", "/images/busybox", "", 503, []string{"image store"}},
		{"pull", "POST", "/images", `{"reference": "127.0.0.1:5000/busybox:1"}`, 503, []string{"image store"}},
		{"start", "POST", "/containers/x", `{"image": "127.0.0.1:5000/busybox:1"}`, 503, []string{"image store"}},
		{"pool", "PUT", "/pools/p", `{"image": "127.0.0.1:5000/busybox:1", "size": 1}`, 503, []string{"image store"}},
	})
}

func TestAnswerOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   api.ErrorCode
	}{
		{"invalid argument", fmt.Errorf("image reference %q: %w", "UPPER", errclass.InvalidArgument), 400, api.InvalidArgument},
		{"body too large", fmt.Errorf("x: %w", errBodyTooLarge), 413, api.TooLarge},
		{"unauthorized", errUnauthorized, 401, api.Unauthorized},
		{"not found", fmt.Errorf("image %q: %w", "x", errclass.NotFound), 404, api.NotFound},
		{"already exists", fmt.Errorf("container %q: %w", "x", errclass.AlreadyExists), 409, api.AlreadyExists},
		{"image in use", fmt.Errorf("image x is used by 1 containers: %w", errclass.FailedPrecondition), 409, api.FailedPrecondition},
		{"registry unreachable", errclass.With(errclass.Unavailable, errors.New("dial tcp: refused")), 503, api.Unavailable},
		{"deadline", fmt.Errorf("criu: %w", context.DeadlineExceeded), 504, api.DeadlineExceeded},
		{"disk full", fmt.Errorf("unpack layer sha256:ab: write /x: %w", syscall.ENOSPC), 507, api.NoSpace},
		{"anything else", errors.New("runc: boom"), 500, api.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, code := answerOf(tt.err); status != tt.status || code != tt.code {
				t.Errorf("answerOf(%v) = %d %s, want %d %s", tt.err, status, code, tt.status, tt.code)
			}
			if !slices.Contains(codesOfStatus[tt.status], tt.code) {
				t.Errorf("code %s is not one of status %d's in codesOfStatus", tt.code, tt.status)
			}
		})
	}
}

// TestImageArchives: an image exported as an OCI archive comes back by
// import, with its name, after its removal; bad archives and formats are
// the caller's fault.
func TestImageArchives(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	reg := registrytest.Start(t, registrytest.Config{})
	ref := reg.Host() + "/archived:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"true"}}, registrytest.Tar(t, map[string]string{"etc/motd": "saved\n"}))
	if a := e.pull(fmt.Sprintf(`{"reference": %q}`, ref)); a.status != nethttp.StatusOK || a.last().Image == nil {
		t.Fatalf("pull: %d %+v", a.status, a.last())
	}
	path := "/images/" + ref
	archive := e.mustStatus(200, "GET", path+"?archive=oci", "")
	if ct := archive.header.Get("Content-Type"); ct != "application/x-tar" {
		t.Errorf("the archive's content type is %q", ct)
	}
	e.mustStatus(200, "DELETE", path, "")
	e.mustStatus(404, "GET", path, "")

	var l api.ImageList
	decodeBody(t, e.mustStatus(201, "POST", "/images/import", string(archive.body)), &l)
	if len(l.Images) != 1 || !slices.Equal(l.Images[0].Names, []string{ref}) {
		t.Fatalf("import answered %+v, want the image named %s", l.Images, ref)
	}
	e.mustStatus(200, "GET", path, "")

	e.run(t, []request{
		{"another format", "GET", path + "?archive=zip", "", 400, []string{"oci"}},
		{"an image not there", "GET", "/images/" + reg.Host() + "/none:1?archive=oci", "", 404, nil},
		{"not an archive", "POST", "/images/import", "garbage", 400, nil},
		{"an empty archive", "POST", "/images/import", "", 400, nil},
	})
}

// TestPullWithCredentials: a pull, or a start that pulls, may carry its own
// credentials for a registry that wants them (a pod's imagePullSecrets);
// they are used, never stored, and never echoed.
func TestPullWithCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{images: true})
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.Start(t, registrytest.Config{Htpasswd: "puller:" + string(hash) + "\n"})
	ref := reg.Host() + "/private:1"
	registrytest.PushAuth(t, ref, "puller", "s3cret", v1.Config{Cmd: []string{"sh", "-c", "echo private; exec sleep 300"}},
		registrytest.TarDir(t, e.rig.Rootfs))

	failed := func(a pullAnswer) string {
		if a.status != nethttp.StatusOK {
			return string(a.err.body)
		}
		if l := a.last(); l.Error != nil {
			return l.Error.Error
		}
		return ""
	}
	// Without credentials, or with wrong ones, the registry says no; the
	// password is in no answer.
	for _, body := range []string{
		fmt.Sprintf(`{"reference": %q}`, ref),
		fmt.Sprintf(`{"reference": %q, "auth": {"username": "puller", "password": "guess-me"}}`, ref),
	} {
		if msg := failed(e.pull(body)); msg == "" || strings.Contains(msg, "guess-me") {
			t.Errorf("pull %s: %q; want a refusal that does not show the password", body, msg)
		}
	}
	a := e.pull(fmt.Sprintf(`{"reference": %q, "auth": {"username": "puller", "password": "s3cret"}}`, ref))
	if msg := failed(a); msg != "" || a.last().Image == nil {
		t.Fatalf("pull with the right credentials: %q", msg)
	}
	// Not stored: once the image is gone, a pull without them fails again;
	// a start that pulls may carry them too.
	e.mustStatus(200, "DELETE", "/images/"+ref, "")
	if msg := failed(e.pull(fmt.Sprintf(`{"reference": %q}`, ref))); msg == "" {
		t.Error("a pull without credentials after one with them succeeded: they were kept")
	}
	var c api.Container
	decodeBody(t, e.mustStatus(201, "POST", "/containers/priv",
		fmt.Sprintf(`{"image": %q, "pull": "missing", "auth": {"username": "puller", "password": "s3cret"}}`, ref)), &c)
	testutil.Eventually(t, "the private container to say so", func() bool {
		return strings.Contains(string(e.do("GET", "/containers/priv/logs", "").body), "private")
	})
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/priv?force=true", "")
	want(t, "auth on a start from a bundle", e.do("POST", "/containers/x", fmt.Sprintf(`{"bundlePath": %q, "auth": {"username": "a"}}`, e.bundle("x", "true"))), 400, "auth")
}
