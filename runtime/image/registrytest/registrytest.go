package registrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// startTimeout bounds how long a registry may take to answer GET /v2/.
const startTimeout = 15 * time.Second

// Config is what a test may ask of its registry.
type Config struct {
	// Htpasswd, when set, is the content of an htpasswd file (bcrypt
	// entries): the registry then requires basic auth.
	Htpasswd string
	// RedirectBaseURL, when set, makes the registry answer blob GETs with a
	// redirect to this base URL (distribution's redirect storage
	// middleware), as registries that serve blobs from a CDN do.
	RedirectBaseURL string
}

// Registry is a running registry.
type Registry struct {
	addr    string
	storage string
	cmd     *exec.Cmd
	// token is sent back in every answer's X-Registrytest header: it tells
	// this registry from another one on the same port.
	token string
	stop  func()
}

// Host returns the registry's host:port, the first part of a reference.
func (r *Registry) Host() string { return r.addr }

// Stop kills the registry and waits for it to exit, for tests of what
// happens without it; it is stopped when the test ends anyway.
func (r *Registry) Stop() { r.stop() }

// PID returns the registry process's id.
func (r *Registry) PID() int { return r.cmd.Process.Pid }

// BlobPath returns the file in which the registry stores blob dgst
// ("sha256:<hex>"), for tests that corrupt what it serves.
func (r *Registry) BlobPath(dgst string) string {
	hexPart := strings.TrimPrefix(dgst, "sha256:")
	return filepath.Join(r.storage, "docker", "registry", "v2", "blobs", "sha256", hexPart[:2], hexPart, "data")
}

// RequireBinary skips the test when the registry is not installed, unless
// TROUPE_REQUIRE_REGISTRY is set: then a missing registry is a failure.
func RequireBinary(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Binary); err == nil {
		return
	}
	if os.Getenv("TROUPE_REQUIRE_REGISTRY") != "" {
		t.Fatalf("no %s: install the docker-registry package (make deps)", Binary)
	}
	t.Skipf("no %s (make deps installs the docker-registry package)", Binary)
}

// Start starts a registry for t on a free loopback port and waits until it
// answers. It is stopped when t ends.
func Start(t testing.TB, cfg Config) *Registry {
	t.Helper()
	RequireBinary(t)
	dir := t.TempDir()
	var lastErr error
	// The free port is found by binding and releasing it: another process
	// may take it in between, so a registry that cannot bind is retried.
	for range 3 {
		r, err := start(t, dir, cfg)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("start registry: %v", lastErr)
	return nil
}

func start(t testing.TB, dir string, cfg Config) (*Registry, error) {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	run, err := os.MkdirTemp(dir, "registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{addr: addr, storage: filepath.Join(run, "storage"), token: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())}
	config := filepath.Join(run, "config.yml")
	if err := os.WriteFile(config, []byte(r.config(run, cfg)), 0o600); err != nil {
		return nil, err
	}
	if cfg.Htpasswd != "" {
		if err := os.WriteFile(filepath.Join(run, "htpasswd"), []byte(cfg.Htpasswd), 0o600); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(run, "registry.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()

	r.cmd = exec.Command(Binary, "serve", config)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	// No parent-death signal: the kernel sends it when the thread that
	// forked the child ends, and Go ends threads (those libcontainer locks
	// goroutines to, in tests that start containers) whenever it likes,
	// which killed registries in the middle of tests. The test guard kills
	// it if the test binary dies.
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	linuxtest.TrackProcess(r.cmd.Process.Pid)
	exited := make(chan struct{})
	go func() {
		r.cmd.Wait()
		close(exited)
	}()
	stop := func() {
		r.cmd.Process.Kill()
		<-exited
	}
	r.stop = stop

	if err := waitReady(addr, r.token, exited); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("registry on %s: %w; its log:\n%s", addr, err, tail(out))
	}
	t.Cleanup(stop)
	return r, nil
}

// config returns the registry's configuration: storage under run, loopback
// only, no access log (it would drown the test's output).
func (r *Registry) config(run string, cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: registrytest-%d
  headers:
    X-Registrytest: [%q]
`, r.storage, r.addr, time.Now().UnixNano(), r.token)
	if cfg.Htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: registrytest
    path: %s
`, filepath.Join(run, "htpasswd"))
	}
	if cfg.RedirectBaseURL != "" {
		fmt.Fprintf(&b, `middleware:
  storage:
    - name: redirect
      options:
        baseurl: %s
`, cfg.RedirectBaseURL)
	}
	return b.String()
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// waitReady polls GET /v2/ until the registry answers (200, or 401 when it
// wants auth), it exits, or startTimeout passes. The answer must carry the
// registry's token: the port was free when chosen, but another test's
// registry may have taken it since, and answer while ours fails to bind.
func waitReady(addr, token string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
			switch {
			case ok && resp.Header.Get("X-Registrytest") == token:
				return nil
			case ok:
				err = errors.New("another registry answers on its port")
			default:
				err = fmt.Errorf("GET /v2/: %s", resp.Status)
			}
		}
		select {
		case <-exited:
			return errors.New("the registry exited")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v: %w", startTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(b []byte) []byte {
	const max = 4096
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
