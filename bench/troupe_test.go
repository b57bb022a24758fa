package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-run/troupe/actors"
	troupehttp "github.com/troupe-run/troupe/http"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/fake"
)

// fakeDaemon serves troupe's real API, on a unix socket, in front of the
// fake runtime: the troupe target's protocol without real containers (the
// benchmark itself runs against real daemons; see the package doc).
func fakeDaemon(t *testing.T, o fake.Options) (address string, sup *actors.Supervisor) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	sup, err := actors.Spawn(system.Root, actors.Config{Runtime: fake.New(o), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(t.TempDir(), "t.sock")
	l, err := troupehttp.Listen("unix://"+socket, troupehttp.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: troupehttp.New(troupehttp.Config{Supervisor: sup, Logger: quiet}).Handler()}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		_ = sup.Stop()
		system.Shutdown()
	})
	return "unix://" + socket, sup
}

func TestTroupeTarget(t *testing.T) {
	boom := errors.New("no space left on device")
	addr, sup := fakeDaemon(t, fake.Options{
		StartDelay: time.Millisecond,
		StartErr: func(_ context.Context, id string, _ runtime.StartOptions) error {
			if strings.HasSuffix(id, "3") {
				return boom
			}
			return nil
		},
	})
	target, err := NewTroupe(TroupeOptions{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	res, err := Run(testContext(t), target, Options{N: n, Bundle: "/bundles/busybox", Density: true, Settle: -1, IDPrefix: "tt-"})
	if err != nil {
		t.Fatal(err)
	}
	// tt-03, tt-13, ..., tt-53.
	if res.Failures != 6 || res.Summary.Count != n-6 {
		t.Errorf("failures %d, successes %d; want 6, %d", res.Failures, res.Summary.Count, n-6)
	}
	for _, e := range res.Errors {
		if !strings.HasSuffix(e.ID, "3") || !strings.Contains(e.Err.Error(), boom.Error()) {
			t.Errorf("start error %v", e)
		}
	}
	// The daemon is this process: SO_PEERCRED on its socket says so.
	if d := res.Density; !d.Measured() || !slices.Equal(d.Pids, []int{os.Getpid()}) || d.Containers != n-6 {
		t.Errorf("density %+v, want this process's memory for %d containers", d, n-6)
	}
	if res.TeardownErr != nil {
		t.Errorf("teardown: %v", res.TeardownErr)
	}
	if left := sup.State().Containers; len(left) != 0 {
		t.Errorf("%d containers left after the teardown, the first %s", len(left), left[0].ID)
	}
}

func TestTroupeSetupUnreachable(t *testing.T) {
	target, err := NewTroupe(TroupeOptions{Address: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(testContext(t), target, Options{N: 1}); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Run against no daemon: %v", err)
	}
}

func TestChildrenNamed(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, stat string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10", "10 (troupe) S 1 10 10 0 -1")
	write("12", "12 (troupe-engine) S 10 10 10 0 -1")
	write("13", "13 (sleep) S 10 13 13 0 -1")
	write("14", "14 (troupe-engine) S 99 14 14 0 -1")
	write("15", "15 (a) b (c) S 10 15 15 0 -1")
	write("16", "garbage")
	if err := os.Mkdir(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want []int
	}{
		{"troupe-engine", []int{12}},
		{"a) b (c", []int{15}},
		{"init", nil},
	} {
		got, err := childrenNamed(proc, 10, tc.name)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("childrenNamed(10, %q) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestTroupeOverheadPids(t *testing.T) {
	tests := []struct {
		name    string
		o       TroupeOptions
		want    []int
		wantErr string
	}{
		{"given", TroupeOptions{Address: "tcp://127.0.0.1:1", DaemonPid: 4242}, []int{4242}, ""},
		{"tcp without a pid", TroupeOptions{Address: "tcp://127.0.0.1:1"}, nil, "--daemon-pid"},
		{"http without a pid", TroupeOptions{Address: "http://127.0.0.1:1"}, nil, "--daemon-pid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target, err := NewTroupe(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := target.OverheadPids(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("OverheadPids = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, addr := range []string{"unix:///run/x.sock", "/run/x.sock"} {
		if p, ok := troupeSocketPath(addr); !ok || p != "/run/x.sock" {
			t.Errorf("troupeSocketPath(%q) = %q, %v", addr, p, ok)
		}
	}
}

func TestTreeCPU(t *testing.T) {
	proc := t.TempDir()
	// utime stime cutime cstime are fields 14-17.
	stat := func(pid, comm string, ppid int, times ...int) {
		t.Helper()
		line := fmt.Sprintf("%s (%s) S %d 1 1 0 -1 0 0 0 0 0 %d %d %d %d 20 0 1 0", pid, comm, ppid, times[0], times[1], times[2], times[3])
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat("10", "troupe", 1, 100, 50, 7, 3)        // 160 ticks, reaped children included
	stat("11", "troupe-engine", 10, 20, 30, 1, 1) // 52
	stat("12", "sleep) (x", 11, 2, 3, 0, 0)       // 5: a container, grandchild
	stat("13", "other", 1, 1000, 1000, 0, 0)      // not in the tree
	stat("14", "sleep", 13, 9, 9, 0, 0)           // nor is its child
	tests := []struct {
		roots   []int
		want    time.Duration
		wantErr bool
	}{
		{[]int{10}, 2170 * time.Millisecond, false},
		{[]int{10, 11}, 2170 * time.Millisecond, false}, // a descendant named as a root counts once
		{[]int{11}, 570 * time.Millisecond, false},
		{[]int{99}, 0, true},
	}
	for _, tc := range tests {
		got, err := treeCPU(proc, tc.roots)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("treeCPU(%v) = %v, %v; want %v (error: %v)", tc.roots, got, err, tc.want, tc.wantErr)
		}
	}
}
