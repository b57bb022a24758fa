package linux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/troupe-run/troupe/runtime/bundle/busybox"
	"github.com/troupe-run/troupe/runtime/procstat"
)

// loseStartTime does what a failed read of /proc does to libcontainer as
// an init comes up: 0 for its start time in state.json, and a container
// loaded from it.
func loseStartTime(t *testing.T, e *env, id string) *libcontainer.Container {
	t.Helper()
	dir := filepath.Join(e.rt.stateRoot, id)
	state, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	state[startTimeKey] = json.RawMessage("0")
	data, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	lc, err := libcontainer.Load(e.rt.stateRoot, id)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

func stateStartTime(t *testing.T, e *env, id string) string {
	t.Helper()
	state, err := readState(filepath.Join(e.rt.stateRoot, id))
	if err != nil {
		t.Fatal(err)
	}
	return string(state[startTimeKey])
}

func TestSettleStartTime(t *testing.T) {
	tests := []struct {
		name   string
		exited bool // the init has exited before the check
		want   libcontainer.Status
	}{
		{"live init: start time mended", false, libcontainer.Running},
		{"exited init: left stopped", true, libcontainer.Stopped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.start("lost", busybox.Options{})
			pid := c.Init().Pid()
			if tc.exited {
				if err := c.Signal(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				wait(t, c.Init())
			}
			lc := loseStartTime(t, e, "lost")
			// What the mending is for: without it libcontainer calls the
			// live init gone.
			if s, err := lc.Status(); err != nil || s != libcontainer.Stopped {
				t.Fatalf("libcontainer with start time 0: status %v, %v; want stopped", s, err)
			}
			l := &launch{r: e.rt, id: "lost", lc: lc}
			if err := l.settleStartTime(pid); err != nil {
				t.Fatal(err)
			}
			if s, err := l.lc.Status(); err != nil || s != tc.want {
				t.Errorf("after settleStartTime: status %v, %v; want %v", s, err, tc.want)
			}
			want := "0"
			if !tc.exited {
				st, err := procstat.Read(pid)
				if err != nil {
					t.Fatal(err)
				}
				want = strconv.FormatUint(st.StartTicks, 10)
			}
			if got := stateStartTime(t, e, "lost"); got != want {
				t.Errorf("state.json start time %s, want %s", got, want)
			}
		})
	}
}

// TestMendStartTimeKeepsAReading: a start time libcontainer did read is
// never replaced.
func TestMendStartTimeKeepsAReading(t *testing.T) {
	dir := t.TempDir()
	const state = `{"id":"x","init_process_pid":7,"init_process_start":123,"config":{"rootfs":"/r"}}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	mended, err := mendStartTime(dir, 456)
	if err != nil || mended {
		t.Fatalf("mendStartTime = %v, %v; want false, nil", mended, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, stateFile)); string(data) != state {
		t.Errorf("state.json changed to %s", data)
	}
	if _, err := mendStartTime(t.TempDir(), 1); err == nil {
		t.Error("mendStartTime without a state.json: no error")
	}
}
