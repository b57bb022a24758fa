package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/linux"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	// This test binary is also the init of the real containers.
	linux.Init()
	os.Exit(linuxtest.Guarded(func() int {
		code := m.Run()
		shared.Remove()
		return code
	}))
}

// shared holds the busybox rootfs of the tests' bundles; made on first use
// so that the fuzz target, which starts no container, does not pay for it.
var shared = troupetest.NewShared("troupe-http-test-")

// quietLogger drops logs: the tests look at behaviour.
func quietLogger() *slog.Logger { return troupetest.QuietLogger() }

// envOptions shape a test server.
type envOptions struct {
	// token, when set, is required by the server.
	token string
	// unix serves on a unix socket instead of TCP loopback.
	unix bool
	// images gives the supervisor an image store (env.images).
	images bool
}

// env is a daemon under test: a Linux runtime with its own state dir and
// cgroup parent (troupetest.Env), a supervisor in its own actor system,
// and the API served by net/http on a real listener.
type env struct {
	t      *testing.T
	rig    *troupetest.Env
	dir    string
	rt     *linux.Runtime
	sup    *actors.Supervisor
	base   string // URL of the server, without a trailing slash
	client *nethttp.Client
	token  string // sent as a bearer token when set
	images *image.Store
}

// newEnv starts a test server; it skips the test when it cannot start
// real containers.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	rig := shared.New(t, troupetest.Options{Name: "http"})
	system := rig.ActorSystem()
	cfg := actors.Config{Runtime: rig.Runtime, Logger: quietLogger()}
	var store *image.Store
	if o.images {
		var err error
		if store, err = image.Open(filepath.Join(rig.Dir, "images"), image.Options{}); err != nil {
			t.Fatal(err)
		}
		cfg.Images = &actors.Images{Store: store}
	}
	sup, err := actors.Spawn(system.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rig.OnStop(func() { _ = sup.Stop() })
	srv := New(Config{Supervisor: sup, Version: "v0.0.0-test", Token: o.token, Logger: quietLogger()})

	e := &env{t: t, rig: rig, dir: rig.Dir, rt: rig.Runtime, sup: sup, token: o.token, images: store}
	var l net.Listener
	if o.unix {
		sock := filepath.Join(e.dir, "t.sock")
		if l, err = Listen("unix://"+sock, ListenOptions{Token: o.token != ""}); err != nil {
			t.Fatal(err)
		}
		e.base = "http://troupe"
		e.client = &nethttp.Client{Transport: &nethttp.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
		}}
	} else {
		// A test's own daemon on loopback: without a token only because
		// the test says so, as an operator would with --insecure-tcp.
		if l, err = Listen("tcp://127.0.0.1:0", ListenOptions{Token: o.token != "", InsecureTCP: true}); err != nil {
			t.Fatal(err)
		}
		e.base = "http://" + l.Addr().String()
		e.client = &nethttp.Client{Transport: &nethttp.Transport{}}
	}
	hs := &nethttp.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()

	// Registered after the Env's: the server stops before the containers
	// are deleted, and streams end with their connections.
	t.Cleanup(func() {
		hs.Close()
		if err := testutil.Receive(t, "the server to stop serving", served); !errors.Is(err, nethttp.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		e.client.CloseIdleConnections()
	})
	return e
}

// bundle writes a busybox bundle whose init runs args.
func (e *env) bundle(name string, args ...string) string {
	e.t.Helper()
	return e.rig.Bundle(e.t, name, args...)
}

// response is a server's complete answer.
type response struct {
	status int
	header nethttp.Header
	body   []byte
}

// do sends a request and reads the whole answer. body is raw JSON ("" for
// none); header is pairs of name and value. Every error answer is checked
// to be the JSON error object of the contract.
func (e *env) do(method, path, body string, header ...string) response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp := e.send(ctx, method, path, body, header...)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	if r.status >= 400 {
		checkErrorBody(e.t, method+" "+path, r)
	}
	return r
}

// send sends a request and returns the response with its body unread, for
// streams.
func (e *env) send(ctx context.Context, method, path, body string, header ...string) *nethttp.Response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// codesOfStatus are the error codes each status may come with.
var codesOfStatus = map[int][]api.ErrorCode{
	400: {api.InvalidArgument},
	401: {api.Unauthorized},
	404: {api.NotFound},
	405: {api.MethodNotAllowed},
	409: {api.AlreadyExists, api.FailedPrecondition},
	413: {api.TooLarge},
	500: {api.Internal},
	503: {api.Unavailable},
	504: {api.DeadlineExceeded},
	507: {api.NoSpace},
}

// checkErrorBody checks that an error answer is {"error": "...", "code":
// "..."} in JSON and nothing else, with a code that goes with its status.
func checkErrorBody(t *testing.T, what string, r response) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: %d answer has Content-Type %q, want application/json", what, r.status, ct)
	}
	var body struct {
		Error *string        `json:"error"`
		Code  *api.ErrorCode `json:"code"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error == nil || *body.Error == "" || body.Code == nil {
		t.Errorf("%s: %d answer %q is not {\"error\": \"...\", \"code\": \"...\"} (%v)", what, r.status, r.body, err)
		return
	}
	if !slices.Contains(codesOfStatus[r.status], *body.Code) {
		t.Errorf("%s: %d answer has code %q, want one of %q", what, r.status, *body.Code, codesOfStatus[r.status])
	}
}

// errorOf returns the message of an error answer.
func errorOf(r response) string {
	var body api.Error
	_ = json.Unmarshal(r.body, &body)
	return body.Error
}

// want checks the status of r and, for error answers, that the message
// holds every one of contains.
func want(t *testing.T, what string, r response, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
		return
	}
	msg := errorOf(r)
	for _, s := range contains {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: error %q does not mention %q", what, msg, s)
		}
	}
}

// decodeBody decodes r's JSON body into v.
func decodeBody(t *testing.T, r response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
}

// startContainer starts container id from bundle and returns its view.
func (e *env) startContainer(id, bundle string) api.Container {
	e.t.Helper()
	r := e.do("POST", "/containers/"+id, fmt.Sprintf(`{"bundlePath": %q}`, bundle))
	if r.status != nethttp.StatusCreated {
		e.t.Fatalf("start %s: status %d: %s", id, r.status, r.body)
	}
	var c api.Container
	decodeBody(e.t, r, &c)
	return c
}

// get returns container id's view.
func (e *env) get(id string) api.Container {
	e.t.Helper()
	r := e.do("GET", "/containers/"+id, "")
	if r.status != nethttp.StatusOK {
		e.t.Fatalf("get %s: status %d: %s", id, r.status, r.body)
	}
	var c api.Container
	decodeBody(e.t, r, &c)
	return c
}

// exec starts args in container id and returns the new process's pid.
func (e *env) exec(id string, args ...string) int {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"args": args})
	r := e.do("PUT", "/containers/"+id+"/processes", string(body))
	if r.status != nethttp.StatusCreated {
		e.t.Fatalf("exec %v in %s: status %d: %s", args, id, r.status, r.body)
	}
	var p api.Process
	decodeBody(e.t, r, &p)
	if p.Pid <= 0 {
		e.t.Fatalf("exec %v in %s: answered pid %d", args, id, p.Pid)
	}
	return p.Pid
}

// mustStatus sends a request and fails the test unless it gets status.
func (e *env) mustStatus(status int, method, path, body string) response {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, r.status, status, r.body)
	}
	return r
}

// healthy checks that the daemon still serves and still starts containers.
func (e *env) healthy(id string) {
	e.t.Helper()
	e.mustStatus(nethttp.StatusOK, "GET", "/healthz", "")
	e.startContainer(id, e.bundle("healthy", "sleep", "300"))
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/"+id+"?force=true", "")
}

// alive reports whether pid is a live (not zombie) process on the host.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// sub returns e for a subtest: failures go to t.
func (e *env) sub(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}
