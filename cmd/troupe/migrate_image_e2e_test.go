package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/image/registrytest"
)

// TestMigrationOfImageContainer moves counters that run from an image to a
// daemon whose image store starts empty, with troupe migrate: first with the
// registry up (the target pulls the image by digest), then with it gone (the
// image is copied over as an OCI archive). Each counter goes on from where it
// was, on the image's digest. In between, a restore of a checkpoint whose
// image nothing can bring answers 404 naming the digest.
func TestMigrationOfImageContainer(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Config{})
	rootfs, err := busybox.Rootfs(filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host() + "/busybox:1"
	registrytest.Push(t, ref, v1.Config{Cmd: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; usleep 50000; done"},
		Env: []string{"PATH=/bin"}}, registrytest.TarDir(t, rootfs))
	src, dst := startDaemon(t), startDaemon(t)

	call := func(method, url, body string) (int, []byte) {
		t.Helper()
		return callURL(t, method, url, body)
	}
	images := func(d *daemon) []api.Image {
		t.Helper()
		code, body := call("GET", "http://"+d.tcp+"/images", "")
		var l api.ImageList
		if err := json.Unmarshal(body, &l); code != 200 || err != nil {
			t.Fatalf("GET /images: %d %s", code, body)
		}
		return l.Images
	}
	count := func(pid int) int {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/count", pid))
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	start := func(id string) (pid int) {
		t.Helper()
		code, body := call("POST", "http://"+src.tcp+"/containers/"+id, `{"image": "`+ref+`"}`)
		var c api.Container
		if err := json.Unmarshal(body, &c); code != 201 || err != nil || len(c.Processes) == 0 {
			t.Fatalf("start %s on the source: %d %s", id, code, body)
		}
		testutil.Eventually(t, id+" to pass 10", func() bool { return count(c.Processes[0].Pid) > 10 })
		return c.Processes[0].Pid
	}

	if code, body := call("POST", "http://"+src.tcp+"/images", `{"reference": "`+ref+`"}`); code != 200 || !strings.Contains(string(body), `"image"`) {
		t.Fatalf("pull on the source: %d %s", code, body)
	}
	digest := images(src)[0].Digest
	byDigest := reg.Host() + "/busybox@" + digest

	for _, tc := range []struct {
		name string
		// before makes the target's only way to the image the one the
		// case is about.
		before func(t *testing.T)
		want   string
	}{
		{"pulled by digest", func(*testing.T) {}, "pulled"},
		{"copied without a registry", func(t *testing.T) {
			reg.Stop()
			// A checkpoint of a container whose image the target lacks
			// and cannot pull: its restore fails, naming the image.
			pid := start("probe")
			if code, body := call("POST", "http://"+src.tcp+"/containers/probe/checkpoint/p", `{"exit": true}`); code != 201 {
				t.Fatalf("checkpoint probe: %d %s", code, body)
			}
			code, archive := call("GET", "http://"+src.tcp+"/containers/probe/checkpoint/p/archive", "")
			if code != 200 {
				t.Fatalf("export probe/p: %d %s", code, archive)
			}
			if code, body := call("PUT", "http://"+dst.tcp+"/containers/probe/checkpoint/p/archive", string(archive)); code != 201 {
				t.Fatalf("import probe/p on the target: %d %s", code, body)
			}
			for _, body := range []string{`{"checkpoint": "p"}`, `{"checkpoint": "p", "pull": "missing"}`} {
				code, answer := call("POST", "http://"+dst.tcp+"/containers/probe", body)
				if code != 404 || !strings.Contains(string(answer), digest) || !strings.Contains(string(answer), `"not_found"`) {
					t.Errorf("restore %s on a target without the image nor its registry: %d %s; want 404 naming %s", body, code, answer, digest)
				}
			}
			if code, body := call("POST", "http://"+dst.tcp+"/containers/probe", `{"checkpoint": "p", "pull": "always"}`); code != 400 {
				t.Errorf(`restore with "pull": "always": %d %s; want 400`, code, body)
			}
			if n := len(images(dst)); n != 0 {
				t.Errorf("the failed restores left %d images on the target", n)
			}
			if alive(pid) {
				t.Errorf("probe's init %d still runs after a checkpoint with exit", pid)
			}
		}, "copied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			if l := images(dst); len(l) != 0 {
				t.Fatalf("the target starts with images: %+v", l)
			}
			// The next case starts from an empty target again, whatever
			// this one left.
			t.Cleanup(func() {
				call("DELETE", "http://"+dst.tcp+"/containers/"+id+"?force=true", "")
				call("DELETE", "http://"+dst.tcp+"/images/"+digest+"?force=true", "")
			})
			tc.before(t)
			pid := start(id)
			out, err := command(t, src.bin, "--address", "tcp://"+src.tcp, "--json", "migrate", id, "--to", "tcp://"+dst.tcp).Output()
			if err != nil {
				t.Fatalf("troupe migrate: %v\n%s\nsource log:\n%s\ntarget log:\n%s", err, out, src.log(), dst.log())
			}
			var m migration
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("troupe --json migrate printed %s: %v", out, err)
			}
			if m.Image != digest || m.ImageBy != tc.want {
				t.Errorf("migrate: image %s %q; want %s %q", m.Image, m.ImageBy, digest, tc.want)
			}
			t.Logf("image %s in %v; downtime %v", m.ImageBy, m.ImageTime, m.Downtime)
			if alive(pid) {
				t.Errorf("the source's init %d still runs", pid)
			}
			code, body := call("GET", "http://"+dst.tcp+"/containers/"+id, "")
			var c api.Container
			if err := json.Unmarshal(body, &c); code != 200 || err != nil || c.Image != digest || len(c.Processes) == 0 {
				t.Fatalf("on the target: %d %s; want it running from %s", code, body, digest)
			}
			moved := c.Processes[0].Pid
			if n := count(moved); n < 10 {
				t.Errorf("the moved counter is at %d; it should go on from where it was", n)
			}
			at := count(moved)
			testutil.Eventually(t, "the moved counter to count", func() bool { return count(moved) > at })
			// Named by digest on the target whichever way it came: a
			// migration moves no tag of the target's.
			if l := images(dst); len(l) != 1 || l[0].Digest != digest || strings.Join(l[0].Names, ",") != byDigest {
				t.Errorf("the target's images: %+v; want %s named %s", l, digest, byDigest)
			}
			if code, body := call("DELETE", "http://"+src.tcp+"/containers/"+id, ""); code != 404 {
				t.Errorf("the source still has %s: %d %s", id, code, body)
			}
		})
	}
}
