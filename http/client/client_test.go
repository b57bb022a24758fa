package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/http/client"
	"github.com/troupe-run/troupe/internal/testutil"
)

// redis is the contract's example container, as the daemon sends it.
const redis = `{"id": "redis", "bundlePath": "/containers/redis",
 "state": {"status": "running"},
 "processes": [{"pid": 11497, "args": ["redis-server", "--bind", "0.0.0.0"],
                "user": {"uid": 1000, "gid": 1000}, "terminal": false,
                "env": ["PATH=/usr/bin:/bin", "TERM=xterm"]}]}`

// busyboxImage is an image as the daemon sends it.
const busyboxImage = `{"digest": "sha256:aa", "names": ["127.0.0.1:5000/busybox:1"], "config": "sha256:cc",
 "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024,
 "layers": [{"digest": "sha256:11", "diffID": "sha256:22", "size": 1024, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}],
 "pulled": "2026-11-29T10:00:00Z", "containers": 2}`

func busyboxInfo() api.Image {
	return api.Image{Digest: "sha256:aa", Names: []string{"127.0.0.1:5000/busybox:1"}, Config: "sha256:cc",
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1024,
		Layers: []api.ImageLayer{{Digest: "sha256:11", DiffID: "sha256:22", Size: 1024, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}},
		Pulled: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Containers: 2}
}

func redisInfo() api.Container {
	return api.Container{
		ID:         "redis",
		BundlePath: "/containers/redis",
		State:      api.ContainerState{Status: api.Running},
		Processes: []api.Process{{
			Pid:  11497,
			Args: []string{"redis-server", "--bind", "0.0.0.0"},
			User: api.User{UID: 1000, GID: 1000},
			Env:  []string{"PATH=/usr/bin:/bin", "TERM=xterm"},
		}},
	}
}

// exchange is one request a test expects and the answer it gets.
type exchange struct {
	method string
	// path is the escaped path, query included if any.
	path string
	// body is the JSON the request must carry ("" for none); compared as
	// JSON values, so spacing and field order do not matter.
	body   string
	status int
	answer string
}

// serve answers every request with ex after checking that the request is
// the one expected.
func serve(t *testing.T, ex exchange) nethttp.HandlerFunc {
	t.Helper()
	return func(w nethttp.ResponseWriter, r *nethttp.Request) {
		got := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			got += "?" + r.URL.RawQuery
		}
		if r.Method != ex.method || got != ex.path {
			t.Errorf("request %s %s, want %s %s", r.Method, got, ex.method, ex.path)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		switch {
		case ex.body == "" && len(body) > 0:
			t.Errorf("request body %s, want none", body)
		case ex.body != "":
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if !jsonEqual(t, body, []byte(ex.body)) {
				t.Errorf("request body %s, want %s", body, ex.body)
			}
		}
		if ex.answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(ex.status)
		_, _ = io.WriteString(w, ex.answer)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Errorf("not JSON: %s: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("test's JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// transport starts a server with handler and returns a client of it.
type transport struct {
	name  string
	start func(t *testing.T, h nethttp.Handler, opts ...client.Option) *client.Client
}

var transports = []transport{
	{"tcp", startTCP},
	{"unix", startUnix},
}

func startTCP(t *testing.T, h nethttp.Handler, opts ...client.Option) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, opts...)
	if err != nil {
		t.Fatalf("client.New(%q): %v", srv.URL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startUnix(t *testing.T, h nethttp.Handler, opts ...client.Option) *client.Client {
	t.Helper()
	// Not t.TempDir(): a socket path must fit in 108 bytes, and test names
	// make long directory names.
	dir, err := os.MkdirTemp("", "troupe-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New("unix://"+sock, opts...)
	if err != nil {
		t.Fatalf("client.New(unix://%s): %v", sock, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ptr[T any](v T) *T { return &v }

func TestCalls(t *testing.T) {
	tests := []struct {
		name string
		call func(context.Context, *client.Client) (any, error)
		ex   exchange
		want any
	}{
		{
			name: "start",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Start(ctx, "redis", api.StartRequest{BundlePath: "/containers/redis"})
			},
			ex:   exchange{"POST", "/containers/redis", `{"bundlePath": "/containers/redis"}`, 201, redis},
			want: redisInfo(),
		},
		{
			name: "start from a checkpoint",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Start(ctx, "clone", api.StartRequest{BundlePath: "/b", Checkpoint: "redis/cp1"})
			},
			ex:   exchange{"POST", "/containers/clone", `{"bundlePath": "/b", "checkpoint": "redis/cp1"}`, 201, redis},
			want: redisInfo(),
		},
		{
			name: "get",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Get(ctx, "redis") },
			ex:   exchange{"GET", "/containers/redis", "", 200, redis},
			want: redisInfo(),
		},
		{
			name: "path segments are escaped",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Get(ctx, "a b/c") },
			ex:   exchange{"GET", "/containers/a%20b%2Fc", "", 200, redis},
			want: redisInfo(),
		},
		{
			name: "list",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.List(ctx) },
			ex:   exchange{"GET", "/state", "", 200, `{"containers": [` + redis + `], "machine": {"cpus": 2, "memory": 7872909312}}`},
			want: []*api.Container{ptr(redisInfo())},
		},
		{
			name: "state",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.State(ctx) },
			ex:   exchange{"GET", "/state", "", 200, `{"containers": [], "machine": {"cpus": 2, "memory": 7872909312}}`},
			want: api.State{Containers: []*api.Container{}, Machine: api.Machine{CPUs: 2, Memory: 7872909312}},
		},
		{
			name: "exec",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Exec(ctx, "redis", api.ExecRequest{
					Args: []string{"sh", "-c", "true"}, Env: []string{"A=b"}, Cwd: "/tmp",
					User: &api.User{UID: 1000, GID: 100},
				})
			},
			ex: exchange{"PUT", "/containers/redis/processes",
				`{"args": ["sh", "-c", "true"], "env": ["A=b"], "cwd": "/tmp", "user": {"uid": 1000, "gid": 100}}`,
				201, `{"pid": 12, "args": ["sh", "-c", "true"], "user": {"uid": 1000, "gid": 100}, "terminal": false, "env": ["A=b"], "cwd": "/tmp"}`},
			want: api.Process{Pid: 12, Args: []string{"sh", "-c", "true"}, User: api.User{UID: 1000, GID: 100}, Env: []string{"A=b"}, Cwd: "/tmp"},
		},
		{
			name: "signal",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Signal(ctx, "redis", 12, 15) },
			ex:   exchange{"POST", "/containers/redis/process/12", `{"signal": 15}`, 204, ""},
		},
		{
			name: "signal answered 200",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Signal(ctx, "redis", 12, 9) },
			ex:   exchange{"POST", "/containers/redis/process/12", `{"signal": 9}`, 200, `{}`},
		},
		{
			name: "kill",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Kill(ctx, "redis", 9) },
			ex:   exchange{"PATCH", "/containers/redis", `{"signal": 9}`, 200, redis},
		},
		{
			name: "kill with signal 0",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Kill(ctx, "redis", 0) },
			ex:   exchange{"PATCH", "/containers/redis", `{"signal": 0}`, 200, redis},
		},
		{
			name: "pause",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Pause(ctx, "redis") },
			ex:   exchange{"PATCH", "/containers/redis", `{"status": "paused"}`, 200, redis},
			want: redisInfo(),
		},
		{
			name: "resume",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Resume(ctx, "redis") },
			ex:   exchange{"PATCH", "/containers/redis", `{"status": "running"}`, 200, redis},
			want: redisInfo(),
		},
		{
			name: "update",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Update(ctx, "redis", api.Resources{Memory: ptr[int64](64 << 20), Pids: ptr[int64](-1)})
			},
			ex:   exchange{"PATCH", "/containers/redis", `{"resources": {"memory": 67108864, "pids": -1}}`, 200, redis},
			want: redisInfo(),
		},
		{
			name: "delete",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Delete(ctx, "redis", false) },
			ex:   exchange{"DELETE", "/containers/redis", "", 204, ""},
		},
		{
			name: "delete with force",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Delete(ctx, "redis", true) },
			ex:   exchange{"DELETE", "/containers/redis?force=true", "", 204, ""},
		},
		{
			name: "stats",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Stats(ctx, "redis") },
			ex: exchange{"GET", "/containers/redis/stats", "", 200,
				`{"cpuUsageNanos": 5, "memoryUsage": 1024, "memoryLimit": 2048, "pids": 3, "pidsLimit": 10, "ioReadBytes": 7}`},
			want: api.Stats{CPUUsageNanos: 5, MemoryUsage: 1024, MemoryLimit: 2048, Pids: 3, PidsLimit: 10, IOReadBytes: 7},
		},
		{
			name: "checkpoint",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Checkpoint(ctx, "redis", "cp1", api.CheckpointRequest{Exit: true, TCP: true})
			},
			ex: exchange{"POST", "/containers/redis/checkpoint/cp1",
				`{"exit": true, "tcp": true}`,
				201, `{"name": "cp1", "tcp": true, "unixSockets": false, "shell": false, "created": "2026-11-29T10:00:00Z"}`},
			want: api.Checkpoint{Name: "cp1", TCP: true, Created: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)},
		},
		{
			name: "checkpoints",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Checkpoints(ctx, "redis") },
			ex: exchange{"GET", "/containers/redis/checkpoint", "", 200,
				`[{"name": "a", "tcp": false, "unixSockets": true, "shell": false}, {"name": "b", "tcp": false, "unixSockets": false, "shell": true}]`},
			want: []api.Checkpoint{{Name: "a", UnixSockets: true}, {Name: "b", Shell: true}},
		},
		{
			name: "delete checkpoint",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return nil, c.DeleteCheckpoint(ctx, "redis", "cp1")
			},
			ex: exchange{"DELETE", "/containers/redis/checkpoint/cp1", "", 204, ""},
		},
		{
			name: "start from an image",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Start(ctx, "web", api.StartRequest{ImageStart: api.ImageStart{
					Image: "127.0.0.1:5000/busybox:1", Pull: api.PullMissing, Args: []string{"httpd", "-f"},
					Entrypoint: &[]string{}, Memory: 64 << 20, Mounts: []api.Mount{{Type: "tmpfs", Destination: "/tmp"}},
				}})
			},
			ex: exchange{"POST", "/containers/web",
				`{"image": "127.0.0.1:5000/busybox:1", "pull": "missing", "args": ["httpd", "-f"], "entrypoint": [], "memory": 67108864, "mounts": [{"type": "tmpfs", "destination": "/tmp"}]}`,
				201, redis},
			want: redisInfo(),
		},
		{
			name: "images",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Images(ctx) },
			ex:   exchange{"GET", "/images", "", 200, `{"images": [` + busyboxImage + `]}`},
			want: []api.Image{busyboxInfo()},
		},
		{
			name: "image by name: its slashes stay, each part escaped",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.Image(ctx, "127.0.0.1:5000/team a/busybox:1")
			},
			ex:   exchange{"GET", "/images/127.0.0.1:5000/team%20a/busybox:1", "", 200, busyboxImage},
			want: busyboxInfo(),
		},
		{
			name: "image by digest",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Image(ctx, "sha256:aa") },
			ex:   exchange{"GET", "/images/sha256:aa", "", 200, busyboxImage},
			want: busyboxInfo(),
		},
		{
			name: "remove image",
			call: func(ctx context.Context, c *client.Client) (any, error) {
				return c.RemoveImage(ctx, "127.0.0.1:5000/busybox:1", false)
			},
			ex:   exchange{"DELETE", "/images/127.0.0.1:5000/busybox:1", "", 200, busyboxImage},
			want: busyboxInfo(),
		},
		{
			name: "remove image with force",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.RemoveImage(ctx, "sha256:aa", true) },
			ex:   exchange{"DELETE", "/images/sha256:aa?force=true", "", 200, busyboxImage},
			want: busyboxInfo(),
		},
		{
			name: "version",
			call: func(ctx context.Context, c *client.Client) (any, error) { return c.Version(ctx) },
			ex:   exchange{"GET", "/version", "", 200, `{"version": "v0.1.0", "go": "go1.26.8", "runc": "v1.5.3"}`},
			want: api.Version{Version: "v0.1.0", Go: "go1.26.8", Runc: "v1.5.3"},
		},
		{
			name: "health",
			call: func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Health(ctx) },
			ex:   exchange{"GET", "/healthz", "", 200, "ok\n"},
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				c := tr.start(t, serve(t, tt.ex))
				got, err := tt.call(t.Context(), c)
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %#v\nwant %#v", got, tt.want)
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		answer  string
		class   error // nil: no class
		message string
	}{
		{"not found", 404, `{"error": "container \"x\": not found", "code": "not_found"}`, errclass.NotFound, `container "x": not found`},
		{"already exists", 409, `{"error": "container \"x\": already exists", "code": "already_exists"}`, errclass.AlreadyExists, `container "x": already exists`},
		{"conflict", 409, `{"error": "container \"x\" is stopped: failed precondition", "code": "failed_precondition"}`, errclass.FailedPrecondition, `container "x" is stopped: failed precondition`},
		{"conflict without a code", 409, `{"error": "container \"x\": already exists"}`, nil, `container "x": already exists`},
		{"bad request", 400, `{"error": "unknown field \"singal\"", "code": "invalid_argument"}`, errclass.InvalidArgument, `unknown field "singal"`},
		{"too large", 413, `{"error": "body too large", "code": "too_large"}`, errclass.InvalidArgument, "body too large"},
		{"unavailable", 503, `{"error": "checkpoints: criu not found", "code": "unavailable"}`, errclass.Unavailable, "checkpoints: criu not found"},
		{"unauthorized", 401, `{"error": "missing bearer token", "code": "unauthorized"}`, nil, "missing bearer token"},
		{"internal", 500, `{"error": "runc: exec failed", "code": "internal"}`, nil, "runc: exec failed"},
		{"a code from a newer daemon", 409, `{"error": "x", "code": "something_new"}`, nil, "x"},
		{"not JSON", 502, "  <html>bad gateway</html>\n", nil, "502 Bad Gateway: <html>bad gateway</html>"},
		{"empty body", 404, "", errclass.NotFound, "404 Not Found"},
		{"JSON without error", 500, `{"message": "x"}`, nil, `500 Internal Server Error: {"message": "x"}`},
	}
	classes := []error{errclass.NotFound, errclass.AlreadyExists, errclass.FailedPrecondition, errclass.InvalidArgument, errclass.Unavailable}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startTCP(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.answer)
			}))
			_, err := c.Get(t.Context(), "x")
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T), want an *APIError", err, err)
			}
			if apiErr.Status != tt.status {
				t.Errorf("Status %d, want %d", apiErr.Status, tt.status)
			}
			if err.Error() != tt.message {
				t.Errorf("message %q, want %q", err.Error(), tt.message)
			}
			for _, class := range classes {
				if got, want := errors.Is(err, class), class == tt.class; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", class, got, want)
				}
			}
		})
	}
}

func TestNoRequest(t *testing.T) {
	c, err := client.New("tcp://127.0.0.1:1") // never dialled
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func(context.Context) error
	}{
		{"get without id", func(ctx context.Context) error { _, err := c.Get(ctx, ""); return err }},
		{"signal without id", func(ctx context.Context) error { return c.Signal(ctx, "", 1, 9) }},
		{"checkpoint without name", func(ctx context.Context) error { return c.DeleteCheckpoint(ctx, "x", "") }},
		{"logs without id", func(ctx context.Context) error { _, err := c.Logs(ctx, "", client.LogOptions{}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(t.Context()); !errors.Is(err, errclass.InvalidArgument) {
				t.Errorf("error %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		address string
		ok      bool
	}{
		{"unix:///run/troupe/troupe.sock", true},
		{"/run/troupe/troupe.sock", true},
		{"tcp://127.0.0.1:8888", true},
		{"http://127.0.0.1:8888", true},
		{"https://troupe.example:8443/api/", true},
		{"unix://", false},
		{"tcp://", false},
		{"127.0.0.1:8888", false},
		{"ftp://host", false},
		{"http://host:1/?a=b", false},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			_, err := client.New(tt.address)
			if tt.ok && err != nil {
				t.Errorf("error %v", err)
			}
			if !tt.ok && !errors.Is(err, errclass.InvalidArgument) {
				t.Errorf("error %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestPathPrefix(t *testing.T) {
	srv := httptest.NewServer(serve(t, exchange{"GET", "/api/healthz", "", 200, ""}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL + "/api/")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name string
		opts []client.Option
		want string
	}{
		{"with token", []client.Option{client.WithToken("s3cret")}, "Bearer s3cret"},
		{"without token", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startUnix(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				if got := r.Header.Get("Authorization"); got != tt.want {
					t.Errorf("Authorization %q, want %q", got, tt.want)
				}
			}), tt.opts...)
			if err := c.Health(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "troupe-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := client.New("unix://" + filepath.Join(dir, "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Health(t.Context())
	if !errors.Is(err, errclass.Unavailable) {
		t.Errorf("error %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "GET /healthz: dial unix ") {
		t.Errorf("message %q, want it to start with the request and the dial", msg)
	}
}

func TestTimeout(t *testing.T) {
	c := startTCP(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		<-r.Context().Done()
	}), client.WithTimeout(50*time.Millisecond))
	if err := c.Health(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want DeadlineExceeded", err)
	}
}

// TestConcurrent fires many requests at once over the unix socket, as the
// benchmark does, for the race detector and the dialer.
func TestConcurrent(t *testing.T) {
	c := startUnix(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.WriteHeader(201)
		_, _ = io.WriteString(w, redis)
	}))
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Start(t.Context(), "redis", api.StartRequest{BundlePath: "/b"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func event(id uint64, typ api.EventType, container string, pid int, exit *int) api.Event {
	return api.Event{ID: id, Type: typ, Container: container, Pid: pid, ExitStatus: exit,
		Time: time.Date(2026, 11, 29, 10, 0, int(id), 0, time.UTC)}
}

// writeEvents writes evs as the daemon does: one JSON document a line,
// flushed.
func writeEvents(t *testing.T, w nethttp.ResponseWriter, evs ...api.Event) {
	t.Helper()
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = w.Write(append(b, '\n'))
	}
	w.(nethttp.Flusher).Flush()
}

// collect reads the stream to its end, failing the test if that takes
// longer than a few seconds.
func collect(t *testing.T, evs <-chan api.Event, errs <-chan error) ([]api.Event, error) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var got []api.Event
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				select {
				case err := <-errs:
					if _, open := <-errs; open {
						t.Error("errors channel yields more than one error")
					}
					return got, err
				case <-timeout:
					t.Fatal("errors channel not closed after the events channel")
				}
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatal("events stream did not end")
		}
	}
}

func TestEvents(t *testing.T) {
	zero, one := 0, 1
	all := []api.Event{
		event(1, api.EventStart, "redis", 11497, nil),
		event(2, api.EventExec, "redis", 12, nil),
		event(3, api.EventProcessExit, "redis", 12, &zero),
		event(4, api.EventExit, "redis", 11497, &one),
	}
	tests := []struct {
		name     string
		req      client.EventsRequest
		query    string
		answer   func(t *testing.T, w nethttp.ResponseWriter)
		want     []api.Event
		wantErr  error  // class or sentinel
		wantText string // in the error
	}{
		{
			name:   "the daemon closes the stream",
			query:  "",
			answer: func(t *testing.T, w nethttp.ResponseWriter) { writeEvents(t, w, all...) },
			want:   all,
		},
		{
			name:   "since and container",
			req:    client.EventsRequest{Since: ptr[uint64](0), Container: "redis"},
			query:  "container=redis&since=0",
			answer: func(t *testing.T, w nethttp.ResponseWriter) { writeEvents(t, w, all[1:]...) },
			want:   all[1:],
		},
		{
			name:  "blank lines are skipped, a last line needs no newline",
			query: "",
			answer: func(t *testing.T, w nethttp.ResponseWriter) {
				_, _ = io.WriteString(w, "\n"+`{"id": 1, "type": "start", "container": "redis", "pid": 11497, "time": "2026-11-29T10:00:01Z"}`+"\n\n")
				_, _ = io.WriteString(w, `{"id": 2, "type": "exec", "container": "redis", "pid": 12, "time": "2026-11-29T10:00:02Z"}`)
			},
			want: all[:2],
		},
		{
			name:  "refused",
			query: "",
			answer: func(t *testing.T, w nethttp.ResponseWriter) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"error": "since: invalid id \"x\""}`)
			},
			wantErr:  errclass.InvalidArgument,
			wantText: `since: invalid id "x"`,
		},
		{
			name:  "not JSON",
			query: "",
			answer: func(t *testing.T, w nethttp.ResponseWriter) {
				writeEvents(t, w, all[0])
				_, _ = io.WriteString(w, "data: {}\n")
			},
			want:     all[:1],
			wantText: "GET /events: decode event",
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				c := tr.start(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
					if r.Method != "GET" || r.URL.Path != "/events" || r.URL.RawQuery != tt.query {
						t.Errorf("request %s %s?%s, want GET /events?%s", r.Method, r.URL.Path, r.URL.RawQuery, tt.query)
					}
					tt.answer(t, w)
				}))
				evs, errs := c.Events(t.Context(), tt.req)
				got, err := collect(t, evs, errs)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events\n%+v\nwant\n%+v", got, tt.want)
				}
				switch {
				case tt.wantErr == nil && tt.wantText == "":
					if err != nil {
						t.Errorf("error %v, want none", err)
					}
				case err == nil:
					t.Errorf("no error, want %v %q", tt.wantErr, tt.wantText)
				default:
					if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
						t.Errorf("error %v, want %v", err, tt.wantErr)
					}
					if !strings.Contains(err.Error(), tt.wantText) {
						t.Errorf("error %q, want it to contain %q", err, tt.wantText)
					}
				}
			})
		}
	}
}

// TestEventsCancel checks that ending the context ends a live stream: the
// events channel closes, the error is the context's, the request is gone
// from the daemon, whether the reader is waiting for the next event or has
// stopped reading.
func TestEventsCancel(t *testing.T) {
	tests := []struct {
		name string
		// read is how many events the caller takes before cancelling.
		read int
	}{
		{"while waiting for an event", 1},
		{"while not reading", 0},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				gone := make(chan struct{})
				c := tr.start(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
					defer close(gone)
					writeEvents(t, w, event(1, api.EventStart, "redis", 1, nil))
					<-r.Context().Done() // a live stream: only the client ends it
				}))
				ctx, cancel := context.WithCancel(t.Context())
				evs, errs := c.Events(ctx, client.EventsRequest{})
				for range tt.read {
					testutil.ReceiveWithin(t, 5*time.Second, "an event", evs)
				}
				if tt.read == 0 {
					testutil.EventuallyWithin(t, 5*time.Second, "the event to wait in the stream's channel send", streamBlockedInSend)
				}
				cancel()
				_, err := collect(t, evs, errs)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want context.Canceled", err)
				}
				testutil.DoneWithin(t, 5*time.Second, "the daemon's handler to end after the client cancelled", gone)
			})
		}
	}
}

func TestLogs(t *testing.T) {
	tests := []struct {
		name  string
		o     client.LogOptions
		query string
	}{
		{"all", client.LogOptions{}, ""},
		{"follow", client.LogOptions{Follow: true}, "follow=true"},
		{"tail", client.LogOptions{Tail: 5}, "tail=5"},
		{"only new", client.LogOptions{Follow: true, Tail: -1}, "follow=true&tail=0"},
		{"since, timestamps, streams", client.LogOptions{Since: "2026-12-02T01:02:03.4Z", Timestamps: true, Streams: true},
			"since=2026-12-02T01%3A02%3A03.4Z&streams=true&timestamps=true"},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				c := tr.start(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
					if r.URL.Path != "/containers/redis/logs" || r.URL.RawQuery != tt.query {
						t.Errorf("request %s?%s", r.URL.Path, r.URL.RawQuery)
					}
					_, _ = io.WriteString(w, "hello\n")
					w.(nethttp.Flusher).Flush()
					_, _ = io.WriteString(w, "\x00raw\xffbytes")
				}))
				rc, err := c.Logs(t.Context(), "redis", tt.o)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				got, err := io.ReadAll(rc)
				if err != nil {
					t.Fatal(err)
				}
				if want := "hello\n\x00raw\xffbytes"; string(got) != want {
					t.Errorf("logs %q, want %q", got, want)
				}
			})
		}
	}
}

func TestLogsFollowCancel(t *testing.T) {
	c := startUnix(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, _ = io.WriteString(w, "line 1\n")
		w.(nethttp.Flusher).Flush()
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := c.Logs(ctx, "redis", client.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 7)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "line 1\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
}

func TestLogsError(t *testing.T) {
	c := startTCP(t, serve(t, exchange{"GET", "/containers/nope/logs", "", 404, `{"error": "container \"nope\": not found"}`}))
	_, err := c.Logs(t.Context(), "nope", client.LogOptions{})
	if !errors.Is(err, errclass.NotFound) || err.Error() != `container "nope": not found` {
		t.Errorf("error %v", err)
	}
}

// streamBlockedInSend reports whether a goroutine of the client's event
// stream is parked in the select that hands an event to the caller: the
// event has been read and waits for a reader. Goroutine dumps are the only
// way to see a blocked channel send from outside.
func streamBlockedInSend() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		// "goroutine N [select]:", then the function that selects
		// (tracebacks leave the runtime's frames out); streamEvents
		// selects only to send.
		lines := strings.Split(g, "\n")
		if len(lines) >= 2 && strings.Contains(lines[0], "[select") &&
			strings.HasPrefix(lines[1], "github.com/troupe-run/troupe/http/client.(*Client).streamEvents(") {
			return true
		}
	}
	return false
}

func TestPullImage(t *testing.T) {
	progress := `{"layer": "sha256:11", "total": 1024, "done": 512}` + "\n" + `{"layer": "sha256:11", "total": 1024, "done": 1024}` + "\n"
	tests := []struct {
		name   string
		status int
		answer string
		// want is the image, or nil when the pull fails.
		want         *api.Image
		wantProgress []api.PullProgress
		wantErr      error  // the class of the failure
		wantText     string // in its message
	}{
		{
			name:   "progress, then the image",
			status: 200,
			answer: progress + "\n" + `{"image": ` + strings.ReplaceAll(busyboxImage, "\n", "") + `}` + "\n",
			want:   ptr(busyboxInfo()),
			wantProgress: []api.PullProgress{
				{Layer: "sha256:11", Total: 1024, Done: 512}, {Layer: "sha256:11", Total: 1024, Done: 1024},
			},
		},
		{
			name:         "the stream's last line is an error",
			status:       200,
			answer:       progress + `{"error": {"error": "layer sha256:11: digest mismatch", "code": "invalid_argument"}}` + "\n",
			wantProgress: []api.PullProgress{{Layer: "sha256:11", Total: 1024, Done: 512}, {Layer: "sha256:11", Total: 1024, Done: 1024}},
			wantErr:      errclass.InvalidArgument,
			wantText:     "digest mismatch",
		},
		{
			name:     "refused before the stream",
			status:   404,
			answer:   `{"error": "127.0.0.1:5000/nosuch:1: not found", "code": "not_found"}`,
			wantErr:  errclass.NotFound,
			wantText: "nosuch",
		},
		{
			name:         "the stream ends without its last line",
			status:       200,
			answer:       progress,
			wantProgress: []api.PullProgress{{Layer: "sha256:11", Total: 1024, Done: 512}, {Layer: "sha256:11", Total: 1024, Done: 1024}},
			wantErr:      errclass.Unavailable,
			wantText:     "without its last line",
		},
		{
			name:     "not JSON",
			status:   200,
			answer:   "<html>\n",
			wantText: "decode pull progress",
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				c := tr.start(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
					body, _ := io.ReadAll(r.Body)
					if r.Method != "POST" || r.URL.Path != "/images" || !jsonEqual(t, body, []byte(`{"reference": "127.0.0.1:5000/busybox:1"}`)) {
						t.Errorf("request %s %s %s", r.Method, r.URL.Path, body)
					}
					if tt.status == 200 {
						w.Header().Set("Content-Type", "application/x-ndjson")
					}
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.answer)
				}))
				var got []api.PullProgress
				img, err := c.PullImage(t.Context(), "127.0.0.1:5000/busybox:1", func(p api.PullProgress) { got = append(got, p) })
				if !reflect.DeepEqual(got, tt.wantProgress) {
					t.Errorf("progress %+v, want %+v", got, tt.wantProgress)
				}
				if tt.want != nil {
					if err != nil || !reflect.DeepEqual(img, *tt.want) {
						t.Errorf("pull: %+v, %v; want %+v", img, err, *tt.want)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %v, want one mentioning %q", err, tt.wantText)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
			})
		}
	}
	t.Run("no reference", func(t *testing.T) {
		c, err := client.New("tcp://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"pull":   func() error { _, err := c.PullImage(t.Context(), "", nil); return err },
			"image":  func() error { _, err := c.Image(t.Context(), ""); return err },
			"remove": func() error { _, err := c.RemoveImage(t.Context(), "", false); return err },
		} {
			if err := call(); !errors.Is(err, errclass.InvalidArgument) {
				t.Errorf("%s without a reference: %v, want an invalid argument", name, err)
			}
		}
	})
}
