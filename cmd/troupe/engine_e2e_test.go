package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/troupe-run/troupe/internal/troupetest"
	"github.com/troupe-run/troupe/runtime/bundle/busybox"
)

// The troupe binary the tests run, built once per test process as make
// build builds it: with the engine embedded, so that its daemons run their
// containers in the engine unless told --engine=false.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// troupeBinary returns the path of the tests' troupe binary, building it
// at the first call. TestMain removes its directory.
func troupeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "troupe-e2e-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = buildWithEngine(dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// buildWithEngine builds this tree's engine and troupe with it embedded
// into dir, as make build does (the tag engine and a go build -overlay),
// and returns troupe's path.
func buildWithEngine(dir string) (string, error) {
	embed, err := filepath.Abs(filepath.Join("internal", "engine", "troupe-engine"))
	if err != nil {
		return "", err
	}
	engineBin, troupeBin := filepath.Join(dir, "troupe-engine"), filepath.Join(dir, "troupe")
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {embed: engineBin}})
	if err != nil {
		return "", err
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"build", "-tags", "seccomp nomsgpack", "-o", engineBin, "../troupe-engine"},
		{"build", "-tags", "seccomp nomsgpack engine", "-overlay", overlayFile, "-o", troupeBin, "."},
	} {
		build := exec.Command("go", args...)
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return troupeBin, nil
}

// TestEngineCheck runs the engine embedded in troupe from its sealed memfd
// on a busybox bundle: libcontainer must see the engine's executable as
// sealed (and so copy nothing per start), a container's init must run that
// memfd, and it must initialise fewer packages than troupe itself, which
// runs the same test in-process for comparison.
func TestEngineCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine starts real containers")
	}
	box := troupetest.NewSandbox(t, "engine")
	// Not beside the state dirs (troupeBinary's is not): libcontainer
	// seals troupe's binary for the in-process side with an overlayfs of
	// its directory, which fails there, and then copies the binary for
	// every start.
	bin := troupeBinary(t)
	bundle, err := busybox.Bundle(filepath.Join(box.Dir, "bundle"), busybox.Options{Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, name string, args ...string) map[string]string {
		t.Helper()
		args = append([]string{"engine-check", "--n", "3", "--timeout", "90s",
			"--state", filepath.Join(box.Dir, name), "--cgroup-parent", box.CgroupParent + "/" + name}, args...)
		out, err := command(t, bin, append(args, bundle)...).CombinedOutput()
		if err != nil {
			t.Fatalf("troupe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("%s:\n%s", name, out)
		found := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				found[k] = v
			}
		}
		return found
	}
	inits := func(t *testing.T, found map[string]string) int {
		t.Helper()
		m := regexp.MustCompile(`^(\d+) `).FindStringSubmatch(found["package-inits"])
		if m == nil {
			t.Fatalf("no package-inits in %v", found)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}

	eng := check(t, "engine")
	if eng["self-exe-cloned"] != "true" {
		t.Errorf("the engine's executable is not a sealed memfd to libcontainer: self-exe-cloned: %q", eng["self-exe-cloned"])
	}
	if !strings.HasPrefix(eng["init-exe"], "/memfd:") {
		t.Errorf("a container's init runs %q, not the engine's memfd", eng["init-exe"])
	}
	if !strings.HasPrefix(eng["starts"], "3,") {
		t.Errorf("starts: %q, want 3 of them", eng["starts"])
	}
	own := check(t, "in-process", "--in-process")
	engineInits, troupeInits := inits(t, eng), inits(t, own)
	t.Logf("package inits per container start: engine %d, troupe %d", engineInits, troupeInits)
	if engineInits >= troupeInits {
		t.Errorf("the engine initialises %d packages, troupe %d: the engine must stay the smaller", engineInits, troupeInits)
	}
}
