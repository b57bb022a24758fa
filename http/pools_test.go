package http

import (
	"fmt"
	nethttp "net/http"
	"testing"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
)

func TestWarmPoolEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.bundle("warm", "sleep", "3600")
	body := func(size int) string { return fmt.Sprintf(`{"bundlePath": %q, "size": %d}`, b, size) }

	errs := []struct {
		what, method, path, body string
		status                   int
		mentions                 []string
	}{
		{"bad name", "PUT", "/pools/-x", body(1), 400, []string{"pool name"}},
		{"no size", "PUT", "/pools/p", fmt.Sprintf(`{"bundlePath": %q}`, b), 400, []string{"size is required"}},
		{"unknown field", "PUT", "/pools/p", `{"bundle": "/x", "size": 1}`, 400, []string{"bundle"}},
		{"negative", "PUT", "/pools/p", body(-1), 400, []string{"size -1"}},
		{"relative bundle", "PUT", "/pools/p", `{"bundlePath": "x", "size": 1}`, 400, []string{"absolute"}},
		{"missing bundle", "PUT", "/pools/p", `{"bundlePath": "/nonexistent", "size": 1}`, 400, []string{"/nonexistent"}},
		{"unknown pool", "GET", "/pools/nope", "", 404, []string{"nope"}},
		{"delete unknown", "DELETE", "/pools/nope", "", 404, []string{"nope"}},
	}
	for _, tc := range errs {
		want(t, tc.what, e.do(tc.method, tc.path, tc.body), tc.status, tc.mentions...)
	}

	var p api.Pool
	r := e.do("PUT", "/pools/web", body(2))
	want(t, "create", r, nethttp.StatusCreated)
	decodeBody(t, r, &p)
	if p.Name != "web" || p.Size != 2 || p.BundlePath != b {
		t.Errorf("created pool = %+v", p)
	}
	want(t, "second pool on the bundle", e.do("PUT", "/pools/other", body(1)), 409, "web")
	testutil.Eventually(t, "a full pool", func() bool {
		r := e.do("GET", "/pools/web", "")
		decodeBody(t, r, &p)
		return p.Ready == 2
	})

	c := e.startContainer("w", b)
	if !c.Warm || c.State.Status != "running" {
		t.Errorf("start with a pool = %+v, want warm and running", c)
	}
	if got := e.get("w"); !got.Warm {
		t.Errorf("GET of a warm container: %+v", got)
	}
	r = e.do("PUT", "/pools/web", `{"size": 1}`)
	want(t, "resize", r, nethttp.StatusOK)
	var list []api.Pool
	decodeBody(t, e.do("GET", "/pools", ""), &list)
	if len(list) != 1 || list[0].Name != "web" || list[0].Size != 1 {
		t.Errorf("pools = %+v", list)
	}
	want(t, "delete", e.do("DELETE", "/pools/web", ""), nethttp.StatusNoContent)
	want(t, "deleted", e.do("GET", "/pools/web", ""), 404)
	if c := e.startContainer("cold", b); c.Warm {
		t.Error("start after the pool's delete was warm")
	}
}
