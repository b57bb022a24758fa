package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/api"
)

// TestVersionNamesTheRuncOfGoMod checks that the daemon's /version names the
// libcontainer it links, read from the binary's build information: a
// version written into the code would go stale with the next upgrade.
func TestVersionNamesTheRuncOfGoMod(t *testing.T) {
	d := startDaemon(t)
	out, err := command(t, d.bin, "--address", "unix://"+d.sock, "version", "--json").Output()
	if err != nil {
		t.Fatalf("troupe version: %v\n%s", err, out)
	}
	var v struct {
		Daemon api.Version `json:"daemon"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("troupe version --json: %v\n%s", err, out)
	}
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/opencontainers/runc" {
			want = f[1]
		}
	}
	if want == "" || v.Daemon.Runc != want {
		t.Errorf("the daemon says runc %q, go.mod requires %q", v.Daemon.Runc, want)
	}
}
