package http

import (
	"fmt"
	nethttp "net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
)

func TestService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})

	t.Run("healthz", func(t *testing.T) {
		r := e.sub(t).mustStatus(nethttp.StatusOK, "GET", "/healthz", "")
		var h struct{ Status string }
		decodeBody(t, r, &h)
		if h.Status != "ok" {
			t.Errorf("healthz answered %s", r.body)
		}
	})
	t.Run("version", func(t *testing.T) {
		var v api.Version
		decodeBody(t, e.sub(t).mustStatus(nethttp.StatusOK, "GET", "/version", ""), &v)
		// A test binary's build information lists no modules: there the
		// version is "unknown", and cmd/troupe's tests check the real
		// binary's against go.mod.
		wantRunc := testutil.Required(t, "github.com/opencontainers/runc")
		if info, _ := debug.ReadBuildInfo(); info == nil || len(info.Deps) == 0 {
			wantRunc = "unknown"
		}
		if v.Version != "v0.0.0-test" || v.Go != goruntime.Version() || v.Runc != wantRunc {
			t.Errorf("version answered %+v, want runc %s", v, wantRunc)
		}
	})

	e.run(t, []request{
		{"list checkpoints", "GET", "/containers/c1/checkpoint", "", 503, []string{"checkpoint", "not available"}},
		{"checkpoint of an unknown container", "POST", "/containers/c1/checkpoint/cp1", `{"exit": true}`, 404, []string{"c1"}},
		{"checkpoint with a typo", "POST", "/containers/c1/checkpoint/cp1", `{"exits": true}`, 400, []string{"exits"}},
		{"delete checkpoint", "DELETE", "/containers/c1/checkpoint/cp1", "", 503, []string{"checkpoint"}},
		{"export checkpoint", "GET", "/containers/c1/checkpoint/cp1/archive", "", 503, []string{"checkpoint"}},
		{"import checkpoint", "PUT", "/containers/c1/checkpoint/cp1/archive", "", 503, []string{"checkpoint"}},
		{"bad checkpoint name", "POST", "/containers/c1/checkpoint/..cp", "", 400, []string{"checkpoint name", "..cp"}},
		{"bad checkpoint name on delete", "DELETE", "/containers/c1/checkpoint/-cp", "", 400, []string{"checkpoint name"}},
		{"bad checkpoint name on archive", "GET", "/containers/c1/checkpoint/.cp/archive", "", 400, []string{"checkpoint name"}},
		{"bad id on checkpoint", "POST", "/containers/..c/checkpoint/cp1", "", 400, []string{"container id"}},
		{"method on healthz", "DELETE", "/healthz", "", 405, []string{"DELETE"}},
		{"method on container", "PUT", "/containers/c1", "", 405, []string{"PUT"}},
		{"method on processes", "GET", "/containers/c1/processes", "", 405, nil},
		{"method on state", "POST", "/state", "{}", 405, nil},
		{"unknown path", "GET", "/nope", "", 404, []string{"/nope"}},
		{"unknown nested path", "GET", "/containers/c1/nope/deeper", "", 404, nil},
		{"unknown api version path", "GET", "/v2/containers", "", 404, nil},
	})

	e.healthy("h1")
	t.Run("metrics", func(t *testing.T) {
		r := e.sub(t).mustStatus(nethttp.StatusOK, "GET", "/metrics", "")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("metrics Content-Type %q", ct)
		}
		for _, s := range []string{
			"# TYPE troupe_http_requests_total counter",
			`troupe_http_requests_total{method="GET",route="/healthz",status="200"}`,
			`troupe_http_requests_total{method="GET",route="unmatched",status="404"}`,
			`troupe_container_starts_total{result="ok"} 1`,
			"troupe_containers 0",
			"troupe_http_request_duration_seconds_bucket",
			"go_goroutines",
		} {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("metrics lack %q", s)
			}
		}
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-secret"
	e := newEnv(t, envOptions{token: token})
	anon := *e
	anon.token = ""

	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"no token", "", 401},
		{"wrong token", "Bearer wrong", 401},
		{"token prefix", "Bearer " + token[:10], 401},
		{"token with more", "Bearer " + token + "x", 401},
		{"no scheme", token, 401},
		{"basic", "Basic " + token, 401},
		{"scheme alone", "Bearer", 401},
		{"no space", "Bearer" + token, 401},
		{"right token", "Bearer " + token, 200},
		// RFC 7235: the scheme is case-insensitive, and one or more
		// spaces follow it.
		{"lower-case scheme", "bearer " + token, 200},
		{"upper-case scheme", "BEARER " + token, 200},
		{"two spaces", "Bearer  " + token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := anon.sub(t)
			for _, path := range []string{"/healthz", "/state", "/nope"} {
				var r response
				if tc.header == "" {
					r = a.do("GET", path, "")
				} else {
					r = a.do("GET", path, "", "Authorization", tc.header)
				}
				switch {
				case tc.status == 401:
					want(t, "GET "+path, r, 401, "token")
					if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
						t.Errorf("GET %s: WWW-Authenticate %q", path, h)
					}
				case path == "/nope":
					want(t, "GET "+path, r, 404)
				default:
					want(t, "GET "+path, r, 200)
				}
			}
		})
	}
	// Without the token nothing happens.
	b := e.bundle("sleep", "sleep", "300")
	want(t, "start without token", anon.do("POST", "/containers/sneaky", fmt.Sprintf(`{"bundlePath": %q}`, b)), 401)
	if ids, _ := e.rt.List(t.Context()); len(ids) != 0 {
		t.Errorf("a request without the token made %v", ids)
	}
	e.healthy("with-token")
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{unix: true})
	fi, err := os.Stat(filepath.Join(e.dir, "t.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	c := e.startContainer("u1", e.bundle("sleep", "sleep", "300"))
	if c.State.Status != api.Running || !alive(c.Processes[0].Pid) {
		t.Errorf("start over the socket answered %+v", c)
	}
	pid := e.exec("u1", "sleep", "100")
	e.mustStatus(nethttp.StatusNoContent, "POST", fmt.Sprintf("/containers/u1/process/%d", pid), `{"signal": "KILL"}`)
	want(t, "unknown", e.do("GET", "/containers/nosuch", ""), 404)
	e.mustStatus(nethttp.StatusOK, "GET", "/state", "")
	e.mustStatus(nethttp.StatusNoContent, "DELETE", "/containers/u1?force=true", "")
}
